"""The models a library has used: list them, and switch (or revert) the active one.

Switching is cheap because every model keeps its own embeddings rows and HNSW files; only a
missing index file (a cache) is rebuilt from SQLite before the switch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from engine.errors import ModelError
from engine.index.db import get_meta, set_meta, transaction
from engine.index.upgrade import is_older_base, mark_caught_up
from engine.jobs import CancelToken, Progress
from engine.models.config import DEFAULT_MODEL, get_config
from engine.train.deep import fill_tuned_features
from engine.train.reproject import build_indexes, count_features, reproject


def _active(lib) -> str:
    return lib.active_model_id


def _current_backbone(lib) -> str | None:
    try:
        return get_config(getattr(lib, "model_name", DEFAULT_MODEL)).backbone_id
    except ModelError:
        return None


def list_models(lib) -> list[dict]:
    """Every registered model, oldest first: id, name, parent, created_at, active, checkpoint, info,
    and ``usable``: False for fine-tunes of an older backbone (their heads no longer fit)."""
    active = _active(lib)
    backbone = _current_backbone(lib)
    rows = lib.db.conn.execute(
        "SELECT id, name, parent, checkpoint, created_at, info FROM models ORDER BY created_at, id"
    ).fetchall()
    models = [
        {
            "id": r[0],
            "name": r[1],
            "parent": r[2],
            "checkpoint": r[3],
            "created_at": r[4],
            "active": r[0] == active,
            "info": json.loads(r[5]) if r[5] else {},
        }
        for r in rows
    ]
    parents = {m["id"]: m["parent"] for m in models}
    for m in models:
        trained_on = m["info"].get("backbone_id")
        m["usable"] = (trained_on is None or backbone is None or trained_on == backbone) and not _is_older_base(
            lib, _root(m["id"], parents))
    if not any(m["id"] == lib.base_model_id for m in models):
        # The base model may not be registered in a library indexed before any training.
        models.insert(
            0,
            {
                "id": lib.base_model_id,
                "name": "packaged base model",
                "parent": None,
                "checkpoint": None,
                "created_at": None,
                "active": active == lib.base_model_id,
                "info": {},
                "usable": True,
            },
        )
    return models


def _root(model_id: str, parents: dict[str, str | None]) -> str:
    """The packaged base a model descends from (fine-tuned heads only fit their base's heads)."""
    seen = {model_id}
    while parents.get(model_id) and parents[model_id] not in seen:
        model_id = parents[model_id]
        seen.add(model_id)
    return parents.get(model_id) or model_id


def _model_dims(lib, model_id: str) -> dict[str, int]:
    from engine.models.config import get_config

    cfg = get_config(lib.model_name)
    dims = {}
    for space in ("va", "vat"):
        row = lib.db.conn.execute(
            "SELECT vec FROM embeddings WHERE model_id=? AND space=? LIMIT 1", (model_id, space)
        ).fetchone()
        dims[space] = len(row[0]) // 4 if row else {"va": cfg.va_dim, "vat": cfg.vat_dim}[space]
    return dims


def use_model(lib, model_id: str) -> None:
    """Make ``model_id`` the active model (rebuilding missing index files first)."""
    known = {m["id"]: m for m in list_models(lib)}
    if model_id not in known:
        raise ModelError(f"no model {model_id!r} in this library; known: {', '.join(known)}")
    if not known[model_id]["usable"]:
        raise ModelError(f"{model_id} was trained on features of another backbone "
                         f"({known[model_id]['info'].get('backbone_id')}); train a new model instead")
    checkpoint = known[model_id]["checkpoint"]
    if checkpoint and not (Path(lib.paths.models_dir) / checkpoint).exists():
        raise ModelError(
            f"the checkpoint of {model_id} ({checkpoint}) is missing from {lib.paths.models_dir}"
        )
    missing = count_features(lib.db, missing_for=model_id)
    for _ in build_indexes(
        lib.db, Path(lib.paths.ann_dir), model_id, _model_dims(lib, model_id), only_missing=not missing
    ):
        pass  # index files are a cache: rebuild any that went missing before searches use them
    with transaction(lib.db):
        set_meta(lib.db, "active_model", model_id)
    lib.reset_model()
    if missing:
        _catch_up(lib, model_id)


def _catch_up(lib, model_id: str) -> None:
    """Embed clips indexed while another model was active, with ``model_id``'s own heads."""
    model = lib.load_models()  # the loader reads the heads of the (now active) model
    if model.tail is not None:  # a deep model: its tail's features for clips it has not seen
        for _ in fill_tuned_features(lib, model, CancelToken()):
            pass
    for _ in reproject(
        lib.db,
        model.heads,
        model_id,
        backbone_id=model.config.backbone_id,
        device=model.device,
        token=CancelToken(),
        only_missing=True,
        tail_id=model.tail_id,
    ):
        pass
    for _ in build_indexes(lib.db, Path(lib.paths.ann_dir), model_id, _model_dims(lib, model_id)):
        pass
    lib.reset_model()


def embed_missing(lib, model, token: CancelToken | None = None) -> Iterator[Progress]:
    """Give the loaded model vectors for every stored clip that has none of it yet (the caller holds
    the library's writer lock).

    After an upgrade that changes the packaged heads (a new base model id, e.g. mmv-base-v1 -> v2)
    the stored backbone features are still valid: they are re-projected once, without decoding, and
    a library whose active model was the older packaged base now uses the new one.
    """
    active = get_meta(lib.db, "active_model")
    if active and active != model.model_id and _is_older_base(lib, active):
        with transaction(lib.db):
            set_meta(lib.db, "active_model", model.model_id)
    missing = count_features(lib.db, model.config.backbone_id, missing_for=model.model_id)
    if missing and model.tail is None:  # a deep model's clips come from its own catch-up
        yield Progress("reproject", 0, missing, "clips", f"updating {missing} clips to {model.model_id}")
        yield from reproject(lib.db, model.heads, model.model_id, backbone_id=model.config.backbone_id,
                             device=model.device, token=token or CancelToken(), only_missing=True)
    mark_caught_up(lib)


def _is_older_base(lib, model_id: str) -> bool:
    return is_older_base(lib.model_name, lib.base_model_id, model_id)
