"""A library indexed under older packaged heads (mmv-base-v1) moves to the current base model by
re-projecting its stored features once, without decoding; fine-tunes of the old heads are unusable."""

from __future__ import annotations

import json

import torch

from engine.api import Library
from engine.index.db import set_meta, transaction
from engine.index.upgrade import needs_catch_up
from engine.jobs import CancelToken
from engine.models.config import get_config
from engine.train.models import embed_missing, list_models
from engine.train.reproject import reproject
from engine.train.synthetic import SyntheticSpec, fake_base_model, write_synthetic_library

OLD = "mmv-base-v1"


def _count(lib, model_id: str) -> int:
    return lib.db.conn.execute("SELECT COUNT(*) FROM embeddings WHERE model_id=?", (model_id,)).fetchone()[0]


def test_old_base_library_is_reprojected_and_switched(tmp_path):
    lib = Library(tmp_path / "lib")
    model = fake_base_model()
    assert model.model_id == get_config("mmv-base").base_model_id != OLD
    write_synthetic_library(lib.db, SyntheticSpec(n_pairs=3, videos_per_pair=2), model.config)
    old_heads = fake_base_model(seed=1).heads
    for _ in reproject(lib.db, old_heads, OLD, backbone_id=None, device=torch.device("cpu"), token=CancelToken()):
        pass
    lib.db.conn.execute("DELETE FROM embeddings WHERE model_id=?", (model.model_id,))
    with transaction(lib.db):
        set_meta(lib.db, "active_model", OLD)
        lib.db.conn.execute("INSERT INTO models(id, name, parent, checkpoint, created_at, info) VALUES "
                            "('ft-old', 'old fine-tune', ?, 'ft-old.pt', 1.0, ?)",
                            (OLD, json.dumps({"backbone_id": model.config.backbone_id})))
    n_old = _count(lib, OLD)
    assert n_old > 0 and _count(lib, model.model_id) == 0

    events = list(embed_missing(lib, model))
    assert events and events[0].stage == "reproject"
    assert lib.active_model_id == model.model_id
    assert _count(lib, model.model_id) == n_old  # every clip's vectors, from the stored features
    assert list(embed_missing(lib, model)) == []  # once only
    usable = {m["id"]: m["usable"] for m in list_models(lib)}
    assert usable[model.model_id] and not usable["ft-old"]


def test_searcher_catches_up_before_the_first_search(tmp_path, monkeypatch):
    lib = Library(tmp_path / "lib")
    model = fake_base_model()
    write_synthetic_library(lib.db, SyntheticSpec(n_pairs=2, videos_per_pair=2), model.config)
    lib.ctx.loader = lambda ctx: model
    lib.ctx.adopt_model(model)
    import engine.search.searcher as searcher_mod

    monkeypatch.setattr(searcher_mod.Searcher, "__init__", lambda self, lib, model: None)
    assert _count(lib, model.model_id) == 0 and needs_catch_up(lib)
    lib.searcher()
    assert _count(lib, model.model_id) > 0
    assert not needs_catch_up(lib)  # one meta row from now on, no scan per query
