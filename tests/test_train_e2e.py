"""End to end on generated videos: a sound always goes with a picture (red square + 440 Hz tone,
blue circle + noise bursts, green stripes + 1.5 kHz tone). Indexed by the real backbones, trained,
then new videos indexed with the fine-tuned model: sound -> picture retrieval goes from chance to
near-perfect, also for clips the training never saw."""

from __future__ import annotations

import numpy as np
import pytest

from engine.index.db import from_blob
from engine.jobs import CancelToken

pytestmark = pytest.mark.slow

PAIRS = [
    {"color": (255, 0, 0), "shape": "square", "tone_hz": 440.0, "noise": False},
    {"color": (0, 0, 255), "shape": "circle", "tone_hz": None, "noise": True},
    {"color": (0, 160, 0), "shape": "stripes", "tone_hz": 1500.0, "noise": False},
]


def _make_videos(folder, copies: int, tag: str) -> dict[str, int]:
    from tests.synth import make_video

    labels = {}
    for pair, spec in enumerate(PAIRS):
        for copy in range(copies):
            background = (255 - 40 * copy, 255, 255 - 30 * copy)  # the copies differ a little
            path = make_video(folder / f"{tag}{pair}_{copy}.mp4", seconds=8.0, background=background, **spec)
            labels[str(path.resolve())] = pair
    return labels


def _vectors(lib, model_id: str, modality: str, labels: dict[str, int]):
    rows = lib.db.conn.execute(
        "SELECT v.path, e.vec FROM embeddings e JOIN clips c ON c.id = e.clip_id "
        "JOIN videos v ON v.id = c.video_id WHERE e.model_id = ? AND e.space = 'va' AND e.modality = ?",
        (model_id, modality),
    ).fetchall()
    rows = [r for r in rows if r[0] in labels]
    return np.array([labels[r[0]] for r in rows]), np.stack([from_blob(r[1]) for r in rows])


def _sound_to_picture(lib, model_id: str, queries: dict[str, int], gallery: dict[str, int]) -> float:
    q_pairs, q = _vectors(lib, model_id, "audio", queries)
    g_pairs, g = _vectors(lib, model_id, "video", gallery)
    return float((g_pairs[(q @ g.T).argmax(axis=1)] == q_pairs).mean())


def test_generated_sound_picture_pairs_are_learned_end_to_end(tmp_path):
    from engine.api import Library

    train_labels = _make_videos(tmp_path / "train", copies=2, tag="t")
    lib = Library(tmp_path / "lib", device="cpu")
    list(lib.index([tmp_path / "train"], CancelToken(), transcribe=False))
    base = lib.active_model_id
    before = _sound_to_picture(lib, base, train_labels, train_labels)
    events = list(lib.train(CancelToken(), epochs=30, device="cpu"))
    model_id = events[-1].info["model_id"]
    assert lib.active_model_id == model_id
    after = _sound_to_picture(lib, model_id, train_labels, train_labels)
    # New videos, indexed with the fine-tuned model (its checkpoint loaded by the engine's loader).
    held_out = _make_videos(tmp_path / "new", copies=1, tag="n")
    list(lib.index([tmp_path / "new"], CancelToken(), transcribe=False))
    unseen = _sound_to_picture(lib, model_id, held_out, train_labels)
    assert before <= 0.6 and after >= 0.95 and unseen >= 0.9, (before, after, unseen)
    lib.use_model(base)  # revert: clips indexed meanwhile get base embeddings too (catch-up)
    assert lib.active_model_id == base
    assert (
        len(_vectors(lib, base, "audio", held_out)[0])
        == len(_vectors(lib, model_id, "audio", held_out)[0])
        > 0
    )
    lib.close()
