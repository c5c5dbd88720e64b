"""bench/check_regression.py on synthetic results files."""

from __future__ import annotations

import json

from bench.check_regression import main, regressions


def fig(value, low, high):
    return {"value": value, "low": low, "high": high, "random": 0.2, "n_queries": 20}


OLD = {"machine": "x", "results": {"sound_to_video": {"report": {
    "R@5": fig(0.8, 0.6, 0.95), "mean_rank": fig(3.0, 2.0, 4.5),
    "per_query": [{"query": "a", "rank": 1}]}}}}


def with_figures(r5, rank):
    return {"results": {"sound_to_video": {"report": {"R@5": r5, "mean_rank": rank}}}}


def test_drop_inside_the_interval_is_not_a_regression():
    assert regressions(with_figures(fig(0.65, 0.4, 0.85), fig(4.0, 3, 5)), OLD) == []


def test_drop_beyond_the_interval_is_a_regression():
    found = regressions(with_figures(fig(0.5, 0.3, 0.7), fig(3.0, 2, 4)), OLD)
    assert len(found) == 1 and "sound_to_video/report/R@5" in found[0]


def test_rank_rising_beyond_the_interval_is_a_regression():
    found = regressions(with_figures(fig(0.9, 0.7, 1.0), fig(6.0, 4, 8)), OLD)
    assert len(found) == 1 and "mean_rank" in found[0]


def test_cli_exit_codes(tmp_path):
    old, good, bad = tmp_path / "old.json", tmp_path / "good.json", tmp_path / "bad.json"
    old.write_text(json.dumps(OLD))
    good.write_text(json.dumps(with_figures(fig(0.85, 0.7, 1.0), fig(2.5, 2, 3))))
    bad.write_text(json.dumps(with_figures(fig(0.3, 0.1, 0.5), fig(2.5, 2, 3))))
    assert main([str(good), str(old)]) == 0
    assert main([str(bad), str(old)]) == 1
    assert main([str(tmp_path / "missing.json"), str(old)]) == 2
