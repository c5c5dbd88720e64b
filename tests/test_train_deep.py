"""Deep mode: the last vision blocks fine-tune too, on clips decoded again from generated videos.

Runs on the CPU with the code path a GPU runs (device="cpu"): decode, trunk cache, tail + heads
training, tuned features stored, model switch, indexing and searching with the deep model, catch-up
after a revert, heads-only training on a deep parent, cancel and resume, missing files.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.errors import Cancelled
from engine.jobs import CancelToken
from engine.train.checkpoint import load_heads_state
from engine.train.deep import CACHE_FILE
from engine.train.trainer import RESUME_FILE
from tests.test_train_e2e import _make_videos, _sound_to_picture

pytestmark = pytest.mark.slow


def _tuned_counts(lib) -> dict[str, int]:
    return dict(lib.db.conn.execute("SELECT tail_id, COUNT(*) FROM tuned_features GROUP BY tail_id").fetchall())


def _n_clips(lib) -> int:
    return lib.db.conn.execute("SELECT COUNT(*) FROM clips").fetchone()[0]


def test_pretrained_tail_reproduces_the_frozen_backbone():
    from engine.models.vision import VisionBackbone
    from engine.models.vision_tail import pretrained_tail

    vision = VisionBackbone(torch.device("cpu"), torch.float32, split=14)
    frames = np.random.default_rng(0).integers(0, 255, (4, 224, 224, 3), dtype=np.uint8)
    frozen = vision.features(frames)
    tail = pretrained_tail(14)
    with torch.no_grad():
        cached = tail(vision.trunk(frames).float())  # the float16 activations a deep run caches
    split_frozen, split_tuned = vision.features_with_tail(frames, tail)
    assert torch.allclose(split_frozen, frozen, atol=1e-4)
    assert torch.allclose(split_tuned, frozen, atol=1e-4)
    assert torch.allclose(cached, frozen, atol=2e-3)  # the cache is float16
    assert sum(p.numel() for p in tail.parameters()) > 1_000_000


@pytest.fixture()
def indexed(tmp_path):
    from engine.api import Library

    labels = _make_videos(tmp_path / "train", copies=2, tag="t")
    lib = Library(tmp_path / "lib", device="cpu")
    list(lib.index([tmp_path / "train"], CancelToken(), transcribe=False))
    yield lib, labels, tmp_path
    lib.close()


def test_deep_run_trains_the_tail_and_the_library_follows_it(indexed):
    lib, labels, tmp_path = indexed
    base = lib.active_model_id
    events = list(lib.train(CancelToken(), epochs=30, device="cpu", deep=True))
    assert any(e.stage == "decode" for e in events)
    deep_id = events[-1].info["model_id"]
    assert lib.active_model_id == deep_id
    assert _sound_to_picture(lib, deep_id, labels, labels) >= 0.95
    # The checkpoint carries the trained tail (weights only), and its features are stored.
    state = load_heads_state(lib.paths.models_dir / f"{deep_id}.pt")
    assert state["tail_id"] == deep_id and state["tail_from_block"] == 14
    from engine.models.vision_tail import pretrained_tail

    pretrained = pretrained_tail(14).state_dict()
    moved = [k for k, v in state["tail"].items() if v.is_floating_point() and not torch.equal(v, pretrained[k])]
    assert moved, "the tail's weights did not change"
    assert _tuned_counts(lib) == {deep_id: _n_clips(lib)}
    assert next(m for m in lib.list_models() if m["id"] == deep_id)["name"].startswith("fine-tuned, deep ")
    assert not (lib.paths.models_dir / CACHE_FILE).exists() and not (lib.paths.models_dir / RESUME_FILE).exists()

    # New videos indexed while the deep model is active get its tail's features and vectors.
    held_out = _make_videos(tmp_path / "new", copies=1, tag="n")
    list(lib.index([tmp_path / "new"], CancelToken(), transcribe=False))
    assert _tuned_counts(lib) == {deep_id: _n_clips(lib)}
    assert _sound_to_picture(lib, deep_id, held_out, labels) >= 0.9
    red = lib.search_image(np.full((120, 160, 3), (255, 0, 0), np.uint8), top_k=3)
    assert red.model_id == deep_id and red.moments

    # Revert, index more, switch back: the deep model decodes the clips it has not seen.
    lib.use_model(base)
    later = _make_videos(tmp_path / "later", copies=1, tag="m")
    list(lib.index([tmp_path / "later"], CancelToken(), transcribe=False))
    lib.use_model(deep_id)
    assert _tuned_counts(lib) == {deep_id: _n_clips(lib)}
    assert _sound_to_picture(lib, deep_id, later, labels) >= 0.9

    # A heads-only run on a deep parent keeps the parent's tail (and reuses its stored features).
    child = list(lib.train(CancelToken(), epochs=2, device="cpu"))[-1].info["model_id"]
    assert load_heads_state(lib.paths.models_dir / f"{child}.pt")["tail_id"] == deep_id
    assert lib.load_models().tail_id == deep_id
    assert _tuned_counts(lib) == {deep_id: _n_clips(lib)}


def test_deep_run_resumes_without_decoding_again_and_skips_missing_files(indexed):
    lib, labels, _ = indexed
    gone = next(p for p in labels if "t0_1" in p)
    lib.db.conn.execute("UPDATE videos SET path = ? WHERE path = ?", (gone + ".moved", gone))  # file "lost"
    token = CancelToken()
    seen = []
    with pytest.raises(Cancelled):
        for event in lib.train(token, epochs=20, device="cpu", deep=True, batch_size=8):
            seen.append(event)
            if event.stage == "train" and event.done == 3:
                token.cancel()
    assert any("left out 1 videos" in e.message for e in seen)
    assert (lib.paths.models_dir / CACHE_FILE).exists() and (lib.paths.models_dir / RESUME_FILE).exists()
    cached = np.load(lib.paths.models_dir / CACHE_FILE, mmap_mode="r")  # on disk, read by rows
    assert cached.dtype == np.float16 and cached.shape[1:] == (2, 192, 7, 7)
    events = list(lib.train(CancelToken(), device="cpu", resume=True))
    assert any(e.message == "reusing the decoded clips" for e in events)
    assert not any(e.stage == "decode" and e.message.startswith("decoding") for e in events)
    first_step = next(e for e in events if e.stage == "train")
    assert first_step.done == 4  # continues after the 3 steps done before the cancel
    deep_id = events[-1].info["model_id"]
    lost_clips = lib.db.conn.execute(
        "SELECT COUNT(*) FROM clips c JOIN videos v ON v.id = c.video_id WHERE v.path = ?", (gone + ".moved",)
    ).fetchone()[0]
    assert lost_clips > 0 and _tuned_counts(lib) == {deep_id: _n_clips(lib) - lost_clips}
