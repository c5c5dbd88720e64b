"""Held-out validation of a training run: a deterministic split by video that is never trained
on, a validation loss every epoch, the best state kept, early stopping, and before/after figures
measured on the held-out videos only (or a plain "too small to judge")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.api import Library
from engine.jobs import CancelToken
from engine.train.checkpoint import load_heads_state
from engine.train.data import load_training_data
from engine.train.holdout import split_holdout
from engine.train.synthetic import SyntheticSpec, fake_base_model, write_synthetic_library


def _library(path, spec: SyntheticSpec):
    lib = Library(path)
    model = fake_base_model()
    lib.load_models = lambda: model
    lib.base_heads = model.heads
    lib.labels = write_synthetic_library(lib.db, spec, model.config)
    return lib


@pytest.fixture()
def big(tmp_path):
    lib = _library(tmp_path / "big", SyntheticSpec(videos_per_pair=5, clips_per_video=3))  # 20 videos
    yield lib
    lib.close()


def test_the_split_is_by_video_deterministic_and_a_fifth(big):
    data = load_training_data(big.db)
    a, b = split_holdout(data), split_holdout(data)
    assert a.judged and a.video_ids == b.video_ids and len(a.video_ids) == 4  # 20% of 20 videos
    held_videos = set(a.held.keys[:, 0].tolist())
    assert held_videos == set(a.video_ids)
    assert held_videos.isdisjoint(a.train.keys[:, 0].tolist())  # no video on both sides
    assert len(a.train) + len(a.held) == len(data)
    assert sorted(np.concatenate([a.train_rows, a.held_rows]).tolist()) == list(range(len(data)))


def test_a_small_library_says_it_cannot_be_judged(tmp_path):
    lib = _library(tmp_path / "small", SyntheticSpec(videos_per_pair=2))  # 8 videos
    try:
        split = split_holdout(load_training_data(lib.db))
        assert not split.judged and split.held is None and "too small to judge" in split.note
        assert len(split.train) == len(load_training_data(lib.db))  # then everything is trained on
        events = list(lib.train(CancelToken(), epochs=2, batch_size=8, device="cpu"))
        held = events[-1].info["metrics"]["held_out"]
        assert held["judged"] is False and "before" not in held and "after" not in held
        assert not any("val_loss" in e.info for e in events)
    finally:
        lib.close()


def test_held_out_clips_are_never_trained_on(big, monkeypatch):
    from engine.train import run as run_module

    seen: set[int] = set()
    original = run_module.make_batch

    def spy(data, rows, device):
        seen.update(int(data.clip_ids[r]) for r in rows)
        return original(data, rows, device)

    monkeypatch.setattr(run_module, "make_batch", spy)
    list(big.train(CancelToken(), epochs=3, batch_size=8, device="cpu"))
    held = split_holdout(load_training_data(big.db))
    assert seen and seen.isdisjoint(held.held.clip_ids.tolist())
    assert seen == set(held.train.clip_ids.tolist())


def test_validation_loss_every_epoch_best_state_published_and_figures_held_out_only(big):
    events = list(big.train(CancelToken(), epochs=6, batch_size=8, device="cpu", lr=3e-3, patience=0))
    train = [e for e in events if e.stage == "train" and "loss" in e.info]
    per_epoch = len(train) // 6
    with_val = [e for e in train if "val_loss" in e.info]
    assert [e.done for e in with_val] == [per_epoch * k for k in range(1, 7)]  # at each epoch's end
    assert all(np.isfinite(e.info["val_loss"]) for e in with_val)
    assert any("held out" in e.message for e in events if e.stage == "prepare")
    held = events[-1].info["metrics"]["held_out"]
    assert held["judged"] and len(held["videos"]) == 4
    assert held["clips"] == 12 and held["best_val_loss"] == min(e.info["val_loss"] for e in with_val)
    for when in ("before", "after"):
        figure = held[when]["sound_to_picture"]["R@1"]
        assert figure["n_queries"] == 12 and figure["random"] == pytest.approx(0.25)  # 4 held-out videos
        assert figure["low"] <= figure["value"] <= figure["high"]
    # Sound and picture of a video come from the same pair: training must beat the untrained heads.
    before, after = (held[w]["sound_to_picture"]["mean_rank"]["value"] for w in ("before", "after"))
    assert after < before


def test_the_published_heads_are_the_best_validation_state(big, monkeypatch):
    from engine.train import run as run_module

    captured = {}
    original = run_module.Validation.restore_best

    def spy(self, heads, tail):
        captured["best"] = self.best_state["heads"]
        original(self, heads, tail)

    monkeypatch.setattr(run_module.Validation, "restore_best", spy)
    events = list(big.train(CancelToken(), epochs=4, batch_size=8, device="cpu", lr=3e-2, patience=0))
    saved = load_heads_state(big.paths.models_dir / f"{events[-1].info['model_id']}.pt")["heads"]
    assert all(torch.equal(saved[k].cpu(), v) for k, v in captured["best"].items())
    # The sound side of S_va is the pretrained sound-alike space: frozen unless asked for.
    assert torch.equal(saved["audio_va.weight"].cpu(), big.base_heads.audio_va.weight.detach())
    assert not torch.equal(saved["video_va.weight"].cpu(), big.base_heads.video_va.weight.detach())


def test_a_few_steps_without_progress_do_not_stop_a_run():
    from engine.train.validation import Validation

    v = Validation.__new__(Validation)  # the bookkeeping only: no data or objective needed
    v.patience, v.min_steps, v.best_loss, v.best_step, v.bad_epochs, v.best_state = 2, 60, None, 0, 0, None
    v.last_step, v.objective = 0, None
    heads = torch.nn.Linear(2, 2)
    assert v.observe(1.0, 0, heads, None)
    for step in (2, 4, 6, 8):   # four bad epochs of two steps: still within the 60-step floor
        assert not v.observe(1.0, step, heads, None)
    assert not v.should_stop()
    v.observe(1.0, 60, heads, None)
    assert v.should_stop()


def test_training_stops_early_when_the_held_out_loss_stops_improving(big):
    # With lr 0 nothing changes, so the held-out loss never improves on its first value.
    events = list(big.train(CancelToken(), epochs=20, batch_size=8, device="cpu", lr=0.0, patience=2,
                             patience_min_steps=0))
    stop = [e for e in events if e.info.get("stopped_early")]
    assert len(stop) == 1 and "stopped early" in stop[0].message
    epochs = {e.info["epoch"] for e in events if e.stage == "train" and "loss" in e.info}
    assert epochs == {1, 2}
    assert events[-1].info["metrics"]["held_out"]["stopped_early"] is True


def test_the_cli_shows_held_out_figures_labelled_as_such():
    from engine.train.cli import held_out_lines

    est = {"value": 0.5, "low": 0.25, "high": 0.75, "random": 0.25, "n_queries": 12}
    held = {"judged": True, "videos": [1, 2, 3, 4], "clips": 12, "best_step": 30,
            "before": {"sound_to_picture": {"R@1": {**est, "value": 0.25}}},
            "after": {"sound_to_picture": {"R@1": est}}}
    text = "\n".join(held_out_lines(held))
    assert "4 videos never trained on" in text and "0.25 [0.25, 0.75] -> 0.50 [0.25, 0.75]" in text
    assert "random 0.25, 12 queries" in text
    assert held_out_lines({"judged": False, "note": "too small to judge: 3 videos"}) == [
        "held-out check: too small to judge: 3 videos"]
