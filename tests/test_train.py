"""The trainer on a synthetic feature-level library: it learns, publishes atomically, cancels cleanly,
resumes, and reverts. Runs on the CPU with the same code path as CUDA (device="cpu")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.api import Library
from engine.errors import Cancelled, ModelError, TrainingError
from engine.index.ann import SPACE_MODALITIES, AnnIndex, index_path
from engine.index.db import from_blob
from engine.jobs import CancelToken
from engine.models.config import get_config
from engine.models.heads import FACHeads
from engine.train.checkpoint import load_heads_state
from engine.train.synthetic import SyntheticSpec, fake_base_model, write_synthetic_library
from engine.train.trainer import RESUME_FILE

BASE = get_config("mmv-base").base_model_id


@pytest.fixture()
def library(tmp_path):
    lib = Library(tmp_path / "lib")
    model = fake_base_model()
    lib.ctx.loader = lambda ctx: model  # no backbones needed: training reads stored features only
    lib.labels = write_synthetic_library(lib.db, SyntheticSpec(silent_every=5), model.config)
    lib.base_heads = model.heads
    yield lib
    lib.close()


def _run(lib, **options) -> list:
    options = {"epochs": 40, "batch_size": 16, "device": "cpu", **options}
    return list(lib.train(CancelToken(), **options))


def _stored(lib, model_id: str, space: str, modality: str) -> tuple[np.ndarray, np.ndarray]:
    rows = lib.db.conn.execute(
        "SELECT clip_id, vec FROM embeddings WHERE model_id=? AND space=? AND modality=? ORDER BY clip_id",
        (model_id, space, modality),
    ).fetchall()
    return np.array([r[0] for r in rows]), np.stack([from_blob(r[1]) for r in rows])


def _clip_pairs(lib, clip_ids: np.ndarray) -> np.ndarray:
    video_of = dict(lib.db.conn.execute("SELECT id, video_id FROM clips").fetchall())
    return np.array([lib.labels[video_of[int(c)]] for c in clip_ids])


def _audio_to_video_accuracy(lib, model_id: str) -> float:
    """Top-1 sound -> picture retrieval: does the best video clip show the picture of the sound?"""
    v_ids, v = _stored(lib, model_id, "va", "video")
    a_ids, a = _stored(lib, model_id, "va", "audio")
    best = v_ids[(a @ v.T).argmax(axis=1)]
    return float((_clip_pairs(lib, best) == _clip_pairs(lib, a_ids)).mean())


def _base_embeddings(lib) -> None:
    """What the indexer would have stored with the untrained heads."""
    from engine.train.reproject import reproject

    list(
        reproject(
            lib.db, lib.base_heads, BASE, backbone_id=None, device=torch.device("cpu"), token=CancelToken()
        )
    )


def test_training_aligns_sound_and_picture_from_chance_to_near_perfect(library):
    _base_embeddings(library)
    before = _audio_to_video_accuracy(library, BASE)
    events = _run(library)
    new_id = events[-1].info["model_id"]
    after = _audio_to_video_accuracy(library, new_id)
    assert before <= 0.5 < 0.95 <= after, (before, after)  # 4 pairs: chance is 0.25


def test_milnce_aligns_pictures_with_their_narration(library):
    events = _run(library, weights=(0.0, 1.0))
    v_ids, v = _stored(library, events[-1].info["model_id"], "vat", "video")
    rows = library.db.conn.execute("SELECT video_id, vec FROM transcripts ORDER BY id").fetchall()
    heads = FACHeads(
        library.base_heads.cfg,
        library.base_heads.classifier_weight,
        library.base_heads.classifier_bias,
        library.base_heads.class_text,
    )
    heads.load_state_dict(
        load_heads_state(library.paths.models_dir / f"{events[-1].info['model_id']}.pt")["heads"]
    )
    text = heads.project_text(torch.from_numpy(np.stack([from_blob(r[1]) for r in rows]))).detach().numpy()
    best = v_ids[(text @ v.T).argmax(axis=1)]
    hits = _clip_pairs(library, best) == np.array([library.labels[r[0]] for r in rows])
    assert hits.mean() >= 0.9


def test_progress_reports_every_step_with_loss_terms_and_eta(library):
    events = _run(library, epochs=2)
    steps = [e for e in events if e.stage == "train"]
    assert [e.done for e in steps] == list(range(1, len(steps) + 1)) and steps[-1].total == len(steps)
    for key in ("loss", "loss_nce", "loss_milnce", "clips_per_s", "epoch"):
        assert all(np.isfinite(e.info[key]) for e in steps), key
    assert steps[-1].eta_s == pytest.approx(0.0, abs=1e-6) and steps[0].eta_s > 0
    assert [e.stage for e in events][-6:] == ["reproject", "index", "index", "index", "index", "done"]


def test_publish_registers_switches_and_keeps_the_previous_model(library):
    _base_embeddings(library)
    n_base = library.db.conn.execute("SELECT COUNT(*) FROM embeddings WHERE model_id=?", (BASE,)).fetchone()[
        0
    ]
    new_id = _run(library, epochs=2)[-1].info["model_id"]
    assert library.active_model_id == new_id and new_id.startswith("ft-")
    row = library.db.conn.execute(
        "SELECT parent, checkpoint, info FROM models WHERE id=?", (new_id,)
    ).fetchone()
    assert row[0] == BASE and row[1] == f"{new_id}.pt" and '"history"' in row[2]
    state = load_heads_state(library.paths.models_dir / row[1])
    assert state["model_id"] == new_id and "video_va.weight" in state["heads"]
    assert torch.count_nonzero(state["heads"]["video_center"]) > 0  # centres calibrated on the library
    n_clips = library.db.conn.execute("SELECT COUNT(*) FROM features").fetchone()[0]
    n_audio = library.db.conn.execute("SELECT COUNT(*) FROM features WHERE audio IS NOT NULL").fetchone()[0]
    n_new = library.db.conn.execute("SELECT COUNT(*) FROM embeddings WHERE model_id=?", (new_id,)).fetchone()[
        0
    ]
    assert n_new == 2 * (n_clips + n_audio)
    assert (
        n_base
        == library.db.conn.execute("SELECT COUNT(*) FROM embeddings WHERE model_id=?", (BASE,)).fetchone()[0]
    )
    clip_ids, vecs = _stored(library, new_id, "va", "video")
    index = AnnIndex.load(index_path(library.paths.ann_dir, new_id, "va", "video"), library.load_models().config.va_dim)
    assert index.query(vecs[3], 1)[0][0] == clip_ids[3]
    assert all(index_path(library.paths.ann_dir, new_id, s, m).exists() for s, m in SPACE_MODALITIES)
    assert not (library.paths.models_dir / RESUME_FILE).exists()
    models = library.list_models()
    assert [m["id"] for m in models] == [BASE, new_id] and [m["active"] for m in models] == [False, True]


def test_cancel_during_reprojection_leaves_no_trace(library):
    token = CancelToken()
    with pytest.raises(Cancelled):
        for event in library.train(token, epochs=1, batch_size=16, device="cpu"):
            if event.stage == "reproject":
                token.cancel()
    assert library.active_model_id == BASE
    assert library.db.conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 0
    assert library.db.conn.execute("SELECT COUNT(*) FROM models").fetchone()[0] == 0
    assert not any(p.suffix == ".pt" and p.name != RESUME_FILE for p in library.paths.models_dir.iterdir())
    assert not any(library.paths.ann_dir.iterdir())


def test_a_crashed_run_resumes_from_its_checkpoint(library):
    run = library.train(CancelToken(), epochs=4, batch_size=16, device="cpu", checkpoint_every=5)
    for event in run:
        if event.stage == "train" and event.done == 7:
            break
    run.close()  # like a crash after step 7: nothing more is written, the last checkpoint is step 5
    assert (library.paths.models_dir / RESUME_FILE).exists() and library.active_model_id == BASE
    events = _run(library, resume=True, epochs=99, batch_size=4)  # a resume keeps the interrupted schedule
    steps = [e for e in events if e.stage == "train"]
    assert steps[0].done == 6 and steps[-1].done == steps[-1].total == 12
    info = library.list_models()[-1]["info"]
    assert info["steps"] == 12 and len(info["history"]) == 12


def test_a_cancelled_run_saves_its_state_and_resumes_where_it_stopped(library):
    token = CancelToken()
    with pytest.raises(Cancelled):
        for event in library.train(token, epochs=4, batch_size=16, device="cpu", checkpoint_every=100):
            if event.stage == "train" and event.done == 3:
                token.cancel()
    assert library.active_model_id == BASE
    steps = [e for e in _run(library, resume=True) if e.stage == "train"]
    assert steps[0].done == 4 and steps[-1].done == 12


def test_resume_refuses_a_checkpoint_of_another_parent(library):
    token = CancelToken()
    with pytest.raises(Cancelled):
        for event in library.train(token, epochs=4, batch_size=16, device="cpu", checkpoint_every=2):
            if event.stage == "train" and event.done == 3:
                token.cancel()
    library.load_models().model_id = "ft-other"
    with pytest.raises(TrainingError, match="interrupted run"):
        _run(library, resume=True)


def test_use_model_reverts_and_rebuilds_missing_index_files(library):
    _base_embeddings(library)
    new_id = _run(library, epochs=1)[-1].info["model_id"]
    library.use_model(BASE)
    assert library.active_model_id == BASE
    assert all(index_path(library.paths.ann_dir, BASE, s, m).exists() for s, m in SPACE_MODALITIES)
    index_path(library.paths.ann_dir, new_id, "va", "audio").unlink()
    library.use_model(new_id)
    assert library.active_model_id == new_id
    assert index_path(library.paths.ann_dir, new_id, "va", "audio").exists()
    with pytest.raises(ModelError):
        library.use_model("ft-nonexistent")


def test_time_limited_run_stops_on_time(library):
    events = _run(library, epochs=None, minutes=0.01)
    elapsed = [e.info["elapsed_s"] for e in events if e.stage == "train"]
    # Stops at the first step that ends past the 0.6 s budget (however slow a step is on a busy CPU).
    assert all(e < 0.6 for e in elapsed[:-1]) and elapsed[-1] >= 0.6


def test_gdt_time_shift_positives_train(library):
    events = _run(library, epochs=3, gdt_shift=1)
    losses = [e.info["loss_nce"] for e in events if e.stage == "train"]
    assert events[-1].stage == "done" and len(losses) > 0 and np.isfinite(losses).all()


def test_bad_requests_raise_typed_errors(library):
    with pytest.raises(TrainingError, match="no video it could decode again"):
        _run(library, deep=True)  # deep mode decodes the clips again; these files do not exist
    with pytest.raises(TrainingError):
        _run(library, batch_size=1)
    library.db.conn.execute("DELETE FROM clips")
    with pytest.raises(TrainingError, match="no stored clip features"):
        _run(library)


def test_only_one_writer_at_a_time(library):
    running = library.train(CancelToken(), epochs=1, batch_size=16, device="cpu")
    next(running)
    with pytest.raises(Exception, match="already writing"):
        next(library.train(CancelToken(), epochs=1, device="cpu"))
    running.close()


def test_fine_tunes_of_an_older_backbone_are_listed_as_unusable(library):
    new_id = _run(library, epochs=1)[-1].info["model_id"]
    library.use_model(BASE)
    library.db.conn.execute("UPDATE models SET info = json_set(info, '$.backbone_id', 'old') WHERE id = ?",
                            (new_id,))
    assert [m["usable"] for m in library.list_models()] == [True, False]
    with pytest.raises(ModelError, match="another backbone"):
        library.use_model(new_id)


def test_cli_train_models_and_use(library, capsys):
    from engine.cli import build_parser
    from engine.train.cli import run_command

    parse = build_parser().parse_args
    train_args = parse(["train", "--epochs", "2", "--batch-size", "16", "--device", "cpu"])
    assert run_command(train_args, lambda: library) == 0
    err = capsys.readouterr().err
    assert "step 6/6" in err and "nce" in err and "clips/s" in err and "new model ft-" in err
    assert "held-out check: too small to judge" in err  # 12 videos: nothing held out, and it says so
    assert run_command(parse(["models"]), lambda: library) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].startswith(f"  {BASE}") and listing[1].startswith("* ft-")
    assert run_command(parse(["models", "use", BASE]), lambda: library) == 0
    assert library.active_model_id == BASE
    assert run_command(parse(["status"]), lambda: library) is None  # not a training command
