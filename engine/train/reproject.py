"""Re-project every stored clip feature with new heads under a new model id, and build its HNSW files.

Nothing here touches the active model: rows go under the new id and files into ``ann/<new id>/``,
so a crash or cancel leaves the library exactly as it was (plus removable leftovers, which
:func:`discard_model_outputs` deletes). The switch itself is one transaction elsewhere.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import sqlite_utils
import torch

from engine.index.ann import SPACE_MODALITIES, index_path, rebuild_index
from engine.index.db import from_blob, to_blob, transaction
from engine.jobs import CancelToken, Progress


def _feature_filter(backbone_id: str | None, missing_for: str | None) -> tuple[str, list]:
    sql, args = "", []
    if backbone_id is not None:
        sql += " AND f.backbone_id = ?"
        args.append(backbone_id)
    if missing_for is not None:
        sql += (
            " AND f.clip_id NOT IN (SELECT clip_id FROM embeddings WHERE model_id = ? "
            "AND space = 'va' AND modality = 'video')"
        )
        args.append(missing_for)
    return sql, args


def _feature_rows(db: sqlite_utils.Database, where: tuple[str, list], after: int, limit: int,
                  tail_id: str | None) -> list:
    """(clip_id, n_frames, video, audio) rows; with ``tail_id`` the video features are that deep
    model's tail's (NULL for clips it has not seen: they get no video vectors)."""
    if tail_id is None:
        sql = "SELECT f.clip_id, f.n_frames, f.video, f.audio FROM features f WHERE f.clip_id > ?"
        args: list = [after]
    else:
        sql = ("SELECT f.clip_id, t.n_frames, t.video, f.audio FROM features f LEFT JOIN tuned_features t "
               "ON t.clip_id = f.clip_id AND t.tail_id = ? WHERE f.clip_id > ?")
        args = [tail_id, after]
    return db.conn.execute(sql + where[0] + " ORDER BY f.clip_id LIMIT ?", [*args, *where[1], limit]).fetchall()


@torch.no_grad()
def _embed_rows(heads, rows: list, device: torch.device, vision_dim: int, audio_dim: int) -> list[tuple]:
    """-> [(clip_id, space, modality, float32 vector)] for one chunk of feature rows."""
    out: list[tuple] = []
    with_video = [r for r in rows if r[2] is not None]
    for n_frames in sorted({r[1] for r in with_video}):  # clips of one chunk may differ in frame count
        group = [r for r in with_video if r[1] == n_frames]
        video = np.stack([from_blob(r[2], "float16", (n_frames, vision_dim)) for r in group])
        emb = heads.project_video(torch.from_numpy(video).to(device))
        for space in ("va", "vat"):
            vecs = emb[space].float().cpu().numpy()
            out += [(r[0], space, "video", v) for r, v in zip(group, vecs)]
    with_audio = [r for r in rows if r[3] is not None]
    if with_audio:
        audio = np.stack([from_blob(r[3], "float16", (audio_dim,)) for r in with_audio])
        emb = heads.project_audio(torch.from_numpy(audio).to(device))
        for space in ("va", "vat"):
            vecs = emb[space].float().cpu().numpy()
            out += [(r[0], space, "audio", v) for r, v in zip(with_audio, vecs)]
    return out


def count_features(
    db: sqlite_utils.Database, backbone_id: str | None = None, missing_for: str | None = None
) -> int:
    """Stored features (of ``backbone_id``), optionally only those without embeddings of a model."""
    where = _feature_filter(backbone_id, missing_for)
    return db.conn.execute("SELECT COUNT(*) FROM features f WHERE 1" + where[0], where[1]).fetchone()[0]


def reproject(
    db: sqlite_utils.Database,
    heads,
    model_id: str,
    *,
    backbone_id: str | None,
    device: torch.device,
    token: CancelToken,
    only_missing: bool = False,
    chunk: int = 512,
    tail_id: str | None = None,
) -> Iterator[Progress]:
    """Write ``embeddings`` rows of ``model_id`` for every stored feature (or only the clips that
    have none for it yet); yields Progress per chunk. ``tail_id``: the model's video features are
    the ``tuned_features`` of that deep model's vision tail."""
    where = _feature_filter(backbone_id, model_id if only_missing else None)
    total, done, last = count_features(db, backbone_id, model_id if only_missing else None), 0, -1
    cfg = heads.cfg
    heads.eval()
    while True:
        token.raise_if_cancelled()
        rows = _feature_rows(db, where, last, chunk, tail_id)
        if not rows:
            break
        records = _embed_rows(heads, rows, device, cfg.vision_dim, cfg.audio_dim)
        with transaction(db) as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO embeddings(clip_id, model_id, space, modality, vec) "
                "VALUES (?, ?, ?, ?, ?)",
                [(int(c), model_id, s, m, to_blob(v)) for c, s, m, v in records],
            )
        done, last = done + len(rows), rows[-1][0]
        yield Progress(
            stage="reproject",
            done=done,
            total=total,
            unit="clips",
            message=f"re-projecting clips with {model_id}",
        )


def build_indexes(
    db: sqlite_utils.Database,
    ann_dir: Path,
    model_id: str,
    dims: dict[str, int],
    *,
    only_missing: bool = False,
    token: CancelToken | None = None,
) -> Iterator[Progress]:
    """Build ``ann/<model_id>/<space>_<modality>.hnsw`` from SQLite; ``dims`` maps space -> width."""
    for n, (space, modality) in enumerate(SPACE_MODALITIES, start=1):
        if token is not None:
            token.raise_if_cancelled()
        path = index_path(ann_dir, model_id, space, modality)
        if not (only_missing and path.exists()):
            rebuild_index(db.conn, model_id, space, modality, dims[space]).save(path)
        yield Progress(
            stage="index",
            done=n,
            total=len(SPACE_MODALITIES),
            unit="indexes",
            message=f"building {space}/{modality} index for {model_id}",
        )


def discard_model_outputs(db: sqlite_utils.Database, ann_dir: Path, model_id: str) -> None:
    """Remove the embeddings rows and index files of a model that never became active."""
    with transaction(db) as conn:
        conn.execute("DELETE FROM embeddings WHERE model_id = ?", (model_id,))
        conn.execute("DELETE FROM tuned_features WHERE tail_id = ?", (model_id,))
    shutil.rmtree(ann_dir / model_id, ignore_errors=True)
