"""Backbone v2 -> v3 (migration 5): a library indexed when the audio feature also held the
spectrogram CNN (2048-d) keeps its features' first 768 values, is not decoded again, stays
searchable, and its fine-tuned models stay usable and project exactly as before."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.api import Library
from engine.index import db as dbmod
from engine.index.db import from_blob, to_blob
from engine.index.migrations import upgrade_backbone_id
from engine.index.scan import plan_scan
from engine.jobs import CancelToken
from engine.models.config import MODEL_CONFIGS, ModelConfig, get_config
from engine.train.data import load_training_data
from engine.train.synthetic import SyntheticSpec, fake_base_model, write_synthetic_library
from tests.synth import make_video

CFG = get_config("mmv-base")


def _v2_id(cfg: ModelConfig) -> str:
    """The backbone id the v2 code wrote (ModelConfig.backbone_id before this change)."""
    return (f"{cfg.vision_backbone}@{cfg.image_size}x{cfg.frames_per_clip}"
            f"+{cfg.audio_backbone}+specnet@{cfg.sample_rate}+v2")


@pytest.mark.parametrize("name", list(MODEL_CONFIGS))
def test_each_config_upgrades_its_v2_id_to_its_current_id(name):
    cfg = get_config(name)
    assert _v2_id(cfg) != cfg.backbone_id and upgrade_backbone_id(_v2_id(cfg)) == cfg.backbone_id
    assert upgrade_backbone_id(cfg.backbone_id) == cfg.backbone_id and upgrade_backbone_id(None) is None
    assert upgrade_backbone_id("something-else+v2") == "something-else+v2"


def _make_v2(path, rng: np.random.Generator) -> dict[int, np.ndarray]:
    """Turn a current library file into what the v2 code left: schema 4, v2 ids, and audio features
    with 1280 more values after the stored 768. Returns the v2 audio features by clip id."""
    conn = dbmod.connect(path).conn
    v2 = {}
    for clip_id, blob in conn.execute("SELECT clip_id, audio FROM features WHERE audio IS NOT NULL").fetchall():
        v2[clip_id] = np.concatenate([from_blob(blob, "float16"), rng.standard_normal(1280).astype(np.float16)])
        conn.execute("UPDATE features SET audio=? WHERE clip_id=?", (to_blob(v2[clip_id], "float16"), clip_id))
    conn.execute("UPDATE features SET backbone_id=?", (_v2_id(CFG),))
    conn.execute("UPDATE videos SET backbone_id=? WHERE backbone_id IS NOT NULL", (_v2_id(CFG),))
    conn.execute("UPDATE models SET info=json_set(info, '$.backbone_id', ?)", (_v2_id(CFG),))
    conn.execute("UPDATE meta SET value='4' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    return v2


def test_a_v2_library_keeps_the_whisper_half_and_is_not_indexed_again(tmp_path):
    folder = tmp_path / "videos"
    video = make_video(folder / "a.mp4", seconds=1)
    path = tmp_path / "library.db"
    db = dbmod.connect(path)
    (vid, _), = plan_scan(db, [video], [folder], 4.0, CFG.backbone_id).to_index
    with dbmod.transaction(db) as conn:
        conn.execute("UPDATE videos SET status='done', backbone_id=?, clip_seconds=4.0 WHERE id=?",
                     (CFG.backbone_id, vid))
        clip = conn.execute("INSERT INTO clips(video_id, idx, start, end) VALUES (?, 0, 0, 1)", (vid,)).lastrowid
        conn.execute("INSERT INTO features(clip_id, backbone_id, n_frames, video, audio) VALUES (?, ?, 2, ?, ?)",
                     (clip, CFG.backbone_id, to_blob(np.ones((2, 1280)), "float16"),
                      to_blob(np.arange(768) / 768, "float16")))
        conn.execute("INSERT INTO models(id, name, info) VALUES ('ft-x', 'x', '{\"backbone_id\": \"b\"}')")
    db.conn.close()
    v2 = _make_v2(path, np.random.default_rng(0))

    db = dbmod.connect(path)  # migrates 4 -> 5
    assert dbmod.schema_version(db.conn) == dbmod.SCHEMA_VERSION
    blob, backbone = db.conn.execute("SELECT audio, backbone_id FROM features WHERE clip_id=?", (clip,)).fetchone()
    assert backbone == CFG.backbone_id and blob == to_blob(v2[clip], "float16")[:768 * 2]
    assert np.array_equal(from_blob(blob, "float16"), v2[clip][:768])
    info = json.loads(db.conn.execute("SELECT info FROM models WHERE id='ft-x'").fetchone()[0])
    assert info["backbone_id"] == CFG.backbone_id
    plan = plan_scan(db, [video], [folder], 4.0, CFG.backbone_id)
    assert plan.unchanged == 1 and plan.to_index == []  # no decoding again
    data = load_training_data(db, backbone_id=CFG.backbone_id)
    assert data.audio.shape == (1, CFG.audio_dim) and np.array_equal(data.audio[0].numpy(), v2[clip][:768])
    assert (tmp_path / "library.db.schema4.bak").exists()


def test_fine_tunes_of_a_v2_library_stay_usable_and_project_as_before(tmp_path):
    lib = Library(tmp_path / "lib")
    model = fake_base_model()
    lib.ctx.loader = lambda ctx: model
    write_synthetic_library(lib.db, SyntheticSpec(silent_every=5), model.config)
    events = list(lib.train(CancelToken(), epochs=2, batch_size=16, device="cpu"))
    tuned = events[-1].info["model_id"]
    before = dict(lib.db.conn.execute(
        "SELECT clip_id, vec FROM embeddings WHERE model_id=? AND space='va' AND modality='audio'", (tuned,)))
    lib.close()
    _make_v2(lib.paths.db, np.random.default_rng(1))

    lib = Library(tmp_path / "lib")  # migrates
    lib.ctx.loader = lambda ctx: model
    try:
        assert all(m["usable"] for m in lib.list_models())
        lib.use_model(CFG.base_model_id)
        lib.use_model(tuned)
        assert lib.active_model_id == tuned
        # the fine-tuned heads on the cut features give the vectors they gave on the v2 features
        from engine.train.checkpoint import load_heads_state

        checkpoint = lib.db.conn.execute("SELECT checkpoint FROM models WHERE id=?", (tuned,)).fetchone()[0]
        heads = fake_base_model().heads
        heads.load_state_dict(load_heads_state(lib.paths.models_dir / checkpoint)["heads"])
        rows = lib.db.conn.execute("SELECT clip_id, audio FROM features WHERE audio IS NOT NULL").fetchall()
        feats = torch.from_numpy(np.stack([from_blob(r[1], "float16", (768,)) for r in rows]).astype(np.float32))
        with torch.inference_mode():
            va = heads.project_audio(feats)["va"].numpy()
        for (clip_id, _), vec in zip(rows, va):
            assert np.allclose(from_blob(before[clip_id]), vec, atol=1e-5)
    finally:
        lib.close()


def test_a_deep_trunk_cache_of_backbone_v2_is_still_taken(tmp_path):
    """v3 changed only the audio feature: the vision trunk's cached activations stay valid."""
    from engine.train.deep import CACHE_FILE, CACHE_MANIFEST, _load_cache

    np.save(tmp_path / CACHE_FILE, np.ones((2, 2, 3, 7, 7), np.float16))
    ids = np.array([5, 6])
    for backbone, taken in ((_v2_id(CFG), True), (CFG.backbone_id, True), ("another+v2", False)):
        (tmp_path / CACHE_MANIFEST).write_text(json.dumps({"clip_ids": [5, 6], "backbone_id": backbone}))
        cache = _load_cache(tmp_path, ids, CFG.backbone_id)
        assert (cache is not None) == taken, backbone
