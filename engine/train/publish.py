"""Turn trained heads into a new, active model without ever leaving the library half-updated.

Order: checkpoint file -> embeddings rows under the new id -> HNSW files in ann/<new id>/ ->
one transaction that registers the model and switches ``meta.active_model``. Until that last
transaction commits, searches keep using the previous model; if anything fails or is cancelled
before it, the new rows and files are removed. The previous model's rows and files are kept, so
``models use <previous id>`` reverts instantly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.index.db import set_meta, transaction
from engine.jobs import CancelToken, Progress
from engine.train.checkpoint import save_heads
from engine.train.deep import write_tuned_features
from engine.train.reproject import build_indexes, discard_model_outputs, reproject


def new_model_id(db, now: datetime | None = None) -> str:
    """``ft-YYYYmmdd-HHMMSS`` (UTC), with a suffix if that second is already taken."""
    stamp = (now or datetime.now(timezone.utc)).strftime("ft-%Y%m%d-%H%M%S")
    model_id, n = stamp, 1
    while db.conn.execute("SELECT 1 FROM models WHERE id = ?", (model_id,)).fetchone():
        n += 1
        model_id = f"{stamp}-{n}"
    return model_id


def register_and_activate(db, model_id: str, name: str, parent: str, checkpoint: str, info: dict) -> None:
    """The single commit that makes a trained model the active one."""
    with transaction(db) as conn:
        conn.execute(
            "INSERT INTO models(id, name, parent, checkpoint, created_at, info) VALUES (?, ?, ?, ?, ?, ?)",
            (model_id, name, parent, checkpoint, time.time(), json.dumps(info)),
        )
        set_meta(db, "active_model", model_id)


@dataclass
class TailUpdate:
    """The vision tail a published model uses. ``tail_id`` None: a deep run trained this tail, so
    its features (``clip_ids``, ``features`` [N, T, 1280]) are stored under the new model's id.
    Otherwise the model reuses the tail (and stored features) of deep model ``tail_id``."""

    tail: nn.Module
    tail_id: str | None = None
    clip_ids: np.ndarray | None = None
    features: torch.Tensor | None = None


def _tail_payload(tail: TailUpdate | None, model_id: str) -> tuple[dict, str | None]:
    if tail is None:
        return {}, None
    tail_id = tail.tail_id or model_id
    state = {k: v.detach().cpu().clone() for k, v in tail.tail.state_dict().items()}
    return {"tail": state, "tail_id": tail_id, "tail_from_block": int(tail.tail.split)}, tail_id


def _save_query_heads(lib, heads, model_id: str, checkpoint: str) -> Path:
    """The torch-free query side of the new model (engine.models.query_model), beside its checkpoint."""
    from engine.models.query_model import QueryHeads, heads_path, heads_source

    models_dir = Path(lib.paths.models_dir)
    path = heads_path(models_dir, model_id)
    QueryHeads.from_torch(heads, heads_source(models_dir, model_id, checkpoint, heads.cfg)).save(path)
    return path


def publish(lib, heads, report: dict, *, token: CancelToken, device: torch.device,
            tail: TailUpdate | None = None) -> Iterator[Progress]:
    model_id = new_model_id(lib.db)
    cfg = heads.cfg
    checkpoint = f"{model_id}.pt"
    checkpoint_path = Path(lib.paths.models_dir) / checkpoint
    payload, tail_id = _tail_payload(tail, model_id)
    save_heads(
        checkpoint_path,
        heads,
        model_id,
        cfg.name,
        {"parent": report["parent"], "backbone_id": cfg.backbone_id, **payload},
    )
    query_heads = _save_query_heads(lib, heads, model_id, checkpoint)
    try:
        if tail is not None and tail.tail_id is None:
            yield Progress(stage="reproject", message="storing the fine-tuned tail's video features")
            write_tuned_features(lib.db, model_id, tail.clip_ids, tail.features)
        yield from reproject(lib.db, heads, model_id, backbone_id=cfg.backbone_id, device=device, token=token,
                             tail_id=tail_id)
        yield from build_indexes(
            lib.db, Path(lib.paths.ann_dir), model_id, {"va": cfg.va_dim, "vat": cfg.vat_dim}, token=token
        )
        token.raise_if_cancelled()
        kind = "fine-tuned, deep" if tail is not None and tail.tail_id is None else "fine-tuned"
        name = f"{kind} {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
        register_and_activate(
            lib.db,
            model_id,
            name,
            report["parent"],
            checkpoint,
            {**report, "config_name": cfg.name, "backbone_id": cfg.backbone_id, "tail_id": tail_id},
        )
    except BaseException:
        discard_model_outputs(lib.db, Path(lib.paths.ann_dir), model_id)
        checkpoint_path.unlink(missing_ok=True)
        query_heads.unlink(missing_ok=True)
        raise
    lib.reset_model()
    yield Progress(
        stage="done",
        done=1,
        total=1,
        message=f"now using {model_id}",
        info={
            "model_id": model_id,
            "parent": report["parent"],
            "metrics": report["metrics"],
            "train_seconds": report["train_seconds"],
        },
    )
