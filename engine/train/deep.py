"""Deep mode: fine-tune the last vision blocks too, on frames decoded again from the videos.

The heads-only mode trains on the pooled features stored at indexing time. Deep mode needs the
activations *inside* the backbone, so it decodes every clip's frames again (the same frame times
as indexing, from the clip windows in the database) and runs the frozen trunk once. The trunk's
output at the split (192 x 7 x 7 per frame, float16) is cached in a memory-mapped file: the trunk
never changes, so recomputing it every epoch would give the same numbers at many times the cost,
and a resumed run does not decode again. Only the tail (``VisionTail``) and the heads train.

Clips of videos that are missing or no longer decode are left out of the run, with a message.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.errors import MediaError, ModelError, TrainingError
from engine.index.db import to_blob, transaction
from engine.index.migrations import upgrade_backbone_id
from engine.jobs import CancelToken, Progress
from engine.media.clips import frame_times
from engine.media.frames import sample_frames

CACHE_FILE = "deep-trunk-cache.npy"       # float16 [rows, T, C, h, w], memory-mapped
CACHE_MANIFEST = "deep-trunk-cache.json"  # written last: clip ids of the filled rows, backbone, skipped


@dataclass
class TrunkCache:
    """Trunk activations of the clips a deep run trains on, in the order of ``clip_ids``. The
    array is memory-mapped from disk (~19 KB per frame), so a large library does not have to fit
    in RAM; batches read only their own rows."""

    clip_ids: np.ndarray          # [N] int64
    trunk: torch.Tensor           # [N, T, C, h, w] float16 (CPU, memory-mapped)
    skipped: list[str]            # one line per video left out, for the user

    def rows_for(self, clip_ids: np.ndarray) -> np.ndarray:
        """Positions in this cache of ``clip_ids`` (all of which must be cached)."""
        where = {int(c): i for i, c in enumerate(self.clip_ids)}
        return np.array([where[int(c)] for c in clip_ids], np.int64)


def _clip_plan(db, clip_ids: np.ndarray) -> dict[int, tuple[str, str, list[tuple[int, float, float]]]]:
    """video_id -> (path, status, [(clip_id, start, end), ...]) for the given clips."""
    wanted = {int(c) for c in clip_ids}
    plan: dict[int, tuple[str, str, list]] = {}
    rows = db.conn.execute(
        "SELECT c.id, c.video_id, c.start, c.end, v.path, v.status FROM clips c "
        "JOIN videos v ON v.id = c.video_id ORDER BY c.video_id, c.idx"
    ).fetchall()
    for clip_id, video_id, start, end, path, status in rows:
        if clip_id in wanted:
            plan.setdefault(video_id, (path, status, []))[2].append((clip_id, start, end))
    return plan


def decode_clip_frames(path: Path, windows: list[tuple[float, float]], frames_per_clip: int,
                       image_size: int, token: CancelToken | None = None) -> np.ndarray:
    """uint8 [N, T, S, S, 3]: the frames indexing sampled for these clip windows."""
    times = [t for w in windows for t in frame_times(w, frames_per_clip)]
    frames = sample_frames(path, times, image_size, token)
    return frames.reshape(len(windows), frames_per_clip, image_size, image_size, 3)


def iter_decoded_videos(db, clip_ids: np.ndarray, cfg, token: CancelToken, skipped: list[str]):
    """Yield (done, total, clip ids, frames [N, T, S, S, 3]) per video, decoding the stored clip
    windows again; videos that are missing or fail to decode are noted in ``skipped``."""
    plan = _clip_plan(db, clip_ids)
    for done, (path, status, clips) in enumerate(plan.values(), start=1):
        token.raise_if_cancelled()
        if status == "missing" or not Path(path).exists():
            skipped.append(f"{Path(path).name}: file not found")
            continue
        try:
            frames = decode_clip_frames(Path(path), [(s, e) for _, s, e in clips], cfg.frames_per_clip,
                                        cfg.image_size, token)
        except MediaError as exc:
            skipped.append(f"{Path(path).name}: {exc}")
            continue
        yield done, len(plan), np.array([c for c, _, _ in clips], np.int64), frames


def build_trunk_cache(db, model, clip_ids: np.ndarray, token: CancelToken,
                      models_dir: Path) -> Iterator[Progress | TrunkCache]:
    """Decode the clips again and run the frozen trunk; yields Progress, then the TrunkCache.
    A complete cache left by an interrupted run on the same clips is reused."""
    cached = _load_cache(Path(models_dir), clip_ids, model.config.backbone_id)
    if cached is not None:
        yield Progress(stage="decode", done=1, total=1, unit="videos", message="reusing the decoded clips")
        yield cached
        return
    remove_cache(models_dir)
    cfg, skipped, ids = model.config, [], []
    tmp = Path(models_dir) / (CACHE_FILE + ".tmp")
    array, started = None, time.monotonic()
    for done, total, video_clips, frames in iter_decoded_videos(db, clip_ids, cfg, token, skipped):
        n, t = frames.shape[:2]
        trunk = model.vision.trunk(frames.reshape(n * t, *frames.shape[2:])).numpy()
        if array is None:  # room for every clip; rows of videos that fail to decode stay unused
            array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16,
                                              shape=(len(clip_ids), t, *trunk.shape[1:]))
        array[len(ids):len(ids) + n] = trunk.reshape(n, t, *trunk.shape[1:])
        ids += video_clips.tolist()
        elapsed = time.monotonic() - started
        yield Progress(stage="decode", done=done, total=total, unit="videos",
                       message="decoding clips for deep fine-tuning", eta_s=elapsed / done * (total - done))
    if array is None:
        raise TrainingError("deep mode found no video it could decode again: " + "; ".join(skipped[:3]))
    array.flush()
    del array
    os.replace(tmp, Path(models_dir) / CACHE_FILE)
    manifest = {"clip_ids": ids, "backbone_id": cfg.backbone_id, "skipped": skipped}
    (Path(models_dir) / CACHE_MANIFEST).write_text(json.dumps(manifest))
    yield _load_cache(Path(models_dir), clip_ids, cfg.backbone_id)


def _load_cache(models_dir: Path, clip_ids: np.ndarray, backbone_id: str) -> TrunkCache | None:
    """The cache in ``models_dir`` if it is complete, of this backbone and of (a subset of) these clips."""
    try:
        manifest = json.loads((models_dir / CACHE_MANIFEST).read_text())
        array = np.load(models_dir / CACHE_FILE, mmap_mode="c")  # copy-on-write: never written back
    except (OSError, ValueError):  # missing or damaged: it is only a cache, decode again
        return None
    ids = np.asarray(manifest.get("clip_ids", []), np.int64)
    # (a cache of backbone v2 holds the same trunk activations: v3 changed only the audio feature)
    same_backbone = upgrade_backbone_id(manifest.get("backbone_id")) == backbone_id
    if not same_backbone or not set(ids.tolist()) <= {int(c) for c in clip_ids}:
        return None
    return TrunkCache(ids, torch.from_numpy(array[:len(ids)]), list(manifest.get("skipped", [])))


def remove_cache(models_dir: Path) -> None:
    """Delete the cache (manifest first, so a half-deleted cache is never taken for a whole one)."""
    for name in (CACHE_MANIFEST, CACHE_FILE, CACHE_FILE + ".tmp"):
        try:
            (Path(models_dir) / name).unlink(missing_ok=True)
        except OSError:  # still mapped by another process, or read-only: it is only a cache
            pass


def write_tuned_features(db, tail_id: str, clip_ids: np.ndarray, video: torch.Tensor,
                         chunk: int = 512) -> None:
    """Store a tail's video features [N, T, 1280] (float16) under ``tail_id``."""
    for i in range(0, len(clip_ids), chunk):
        with transaction(db) as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO tuned_features(clip_id, tail_id, n_frames, video) VALUES (?, ?, ?, ?)",
                [(int(c), tail_id, int(v.shape[0]), to_blob(v.numpy(), "float16"))
                 for c, v in zip(clip_ids[i:i + chunk], video[i:i + chunk])],
            )


def fill_tuned_features(lib, model, token: CancelToken) -> Iterator[Progress]:
    """Compute a deep model's tail features for clips that lack them (indexed while another model
    was active), decoding those clips again. Used when switching to a deep model."""
    if model.tail is None:
        raise ModelError("fill_tuned_features needs a deep model (one with a vision tail)")
    missing = np.array([r[0] for r in lib.db.conn.execute(
        "SELECT f.clip_id FROM features f WHERE f.backbone_id = ? AND f.clip_id NOT IN "
        "(SELECT clip_id FROM tuned_features WHERE tail_id = ?)",
        (model.config.backbone_id, model.tail_id),
    )], np.int64)
    if not len(missing):
        return
    skipped: list[str] = []
    for done, total, clip_ids, frames in iter_decoded_videos(lib.db, missing, model.config, token, skipped):
        write_tuned_features(lib.db, model.tail_id, clip_ids, model.video_features(frames))
        yield Progress(stage="decode", done=done, total=total, unit="videos",
                       message=f"computing {model.model_id}'s features for clips it has not seen")
