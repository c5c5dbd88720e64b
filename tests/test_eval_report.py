"""`mmvsearch eval` scores through engine.evaluation (intervals, random baselines), on a fake library."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.train.evaluate import evaluate


class FakeLibrary:
    """Ranks videos by a fixed order per query; no models."""

    active_model_id = "fake-v1"

    def __init__(self, root: Path, order: dict[str, list[str]]):
        self.root, self.order = root, order
        # the models table eval reads for a fine-tuned model's held-out record (none here)
        conn = sqlite3.connect(":memory:")
        conn.execute("CREATE TABLE models(id TEXT PRIMARY KEY, info TEXT)")
        self.db = SimpleNamespace(conn=conn)

    def videos(self):
        names = ("dog1", "dog2", "car", "sea")
        return [SimpleNamespace(path=str(self.root / f"{n}.mp4"), status="done") for n in names]

    def _result(self, key: str):
        return SimpleNamespace(moments=[SimpleNamespace(path=str(self.root / f"{n}.mp4")) for n in self.order[key]])

    def search_text(self, text, top_k=100):
        return self._result(text)

    def search_audio(self, path, top_k=100):
        return self._result(Path(path).name)


def test_eval_reports_intervals_and_random_baselines(tmp_path):
    rows = ["path\tkind\tlabel", "dog1.mp4\tvideo\tdog", "dog2.mp4\tvideo\tdog", "car.mp4\tvideo\tcar",
            "sea.mp4\tvideo\tsea", "bark.wav\taudio\tdog", "motor.wav\taudio\tengine", "cow.wav\taudio\tcow"]
    (tmp_path / "MANIFEST.tsv").write_text("\n".join(rows) + "\n")
    lib = FakeLibrary(tmp_path, {"dog": ["car", "dog2", "sea"], "car": ["car"], "sea": ["dog1", "car", "sea"],
                                 "bark.wav": ["dog1"], "motor.wav": ["sea", "dog1", "dog2"]})
    result = evaluate(lib, tmp_path / "MANIFEST.tsv")
    t = result["text_to_video"]
    assert t["queries"] == 3 and t["ranks"] == {"car": 1, "dog": 2, "sea": 3}
    assert t["R@1"] == pytest.approx(1 / 3, abs=1e-4)
    est = t["estimates"]["R@1"]
    assert est["low"] <= est["value"] <= est["high"] and est["n_queries"] == 3
    # random R@1: dog has 2 of 4 relevant, car and sea 1 of 4
    assert est["random"] == pytest.approx((0.5 + 0.25 + 0.25) / 3, abs=1e-4)
    a = result["audio_to_video"]
    assert a["queries"] == 2  # cow has no class mapping
    # motor.wav (engine -> car): car never shown among 3 retrieved of 4 -> expected rank 4, no R@1
    assert a["ranks"] == {"bark.wav": 1, "motor.wav": None}
    assert a["R@1"] == pytest.approx(0.5)
    assert a["estimates"]["mean_rank"]["value"] == pytest.approx(2.5)
    # a model that was not fine-tuned has no held-out record, and no held-out-only figures are made up
    assert result["training_held_out"] == {} and "held_out_text_to_video" not in result
