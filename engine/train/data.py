"""Training data straight from the library database: stored backbone features, no video decoding.

Per clip: video features [T, 1280] float16, audio features [audio_dim] float16 or none, and the narration
sentences around it: ``transcripts`` rows (speech 'said' and sound captions 'heard') that overlap
the clip widened by ``window`` seconds on each side, as their stored 384-d MiniLM vectors.
Everything is held in memory: an hour of video is ~900 clips, about 5 MB of features.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import sqlite_utils
import torch

from engine.errors import TrainingError
from engine.index.db import from_blob
from engine.models.config import DEFAULT_MODEL, get_config


@dataclass
class TrainingData:
    clip_ids: np.ndarray  # [N] int64
    keys: torch.Tensor  # [N, 2] int64: (video_id, clip idx), for queue masking and GDT
    video: torch.Tensor  # [N, T, 1280] float16
    audio: torch.Tensor  # [N, audio_dim] float16, zeros where the clip has no sound
    has_audio: torch.Tensor  # [N] bool
    sentences: torch.Tensor  # [S, 384] float32 MiniLM features (input of heads.project_text)
    sentence_ids: torch.Tensor  # [S] int64 transcripts row ids
    clip_sentences: list[np.ndarray]  # per clip, indices into ``sentences``
    sentence_heard: torch.Tensor | None = None  # [S] bool: a sound caption ('heard'), not speech

    def __len__(self) -> int:
        return len(self.clip_ids)

    def subset(self, rows: np.ndarray) -> TrainingData:
        """The same data restricted to ``rows`` (sentence indices stay valid)."""
        index = torch.from_numpy(np.asarray(rows, np.int64))
        return TrainingData(self.clip_ids[rows], self.keys[index], self.video[index], self.audio[index],
                            self.has_audio[index], self.sentences, self.sentence_ids,
                            [self.clip_sentences[int(r)] for r in rows], self.sentence_heard)

    def summary(self) -> dict:
        with_text = sum(1 for s in self.clip_sentences if len(s))
        return {
            "clips": len(self),
            "clips_with_audio": int(self.has_audio.sum()),
            "clips_with_sentences": with_text,
            "sentences": len(self.sentences),
        }


def _pad_frames(frames: np.ndarray, n: int) -> np.ndarray:
    """Repeat the last frame so every clip has ``n`` frames (a short last clip may have fewer)."""
    if len(frames) >= n:
        return frames[:n]
    return np.concatenate([frames, np.repeat(frames[-1:], n - len(frames), axis=0)])


def _load_features(db: sqlite_utils.Database, backbone_id: str | None, vision_dim: int, audio_dim: int,
                   tail_id: str | None = None):
    sql = (
        "SELECT c.id, c.video_id, c.idx, f.n_frames, f.video, f.audio FROM features f "
        "JOIN clips c ON c.id = f.clip_id"
    )
    args: list = []
    if tail_id is not None:
        # A deep parent's video features are its own tail's (clips it has not seen are left out).
        sql = ("SELECT c.id, c.video_id, c.idx, t.n_frames, t.video, f.audio FROM features f "
               "JOIN clips c ON c.id = f.clip_id JOIN tuned_features t ON t.clip_id = f.clip_id "
               "AND t.tail_id = ?")
        args.append(tail_id)
    if backbone_id is not None:
        # Features of another backbone/preprocessing are stale: they do not match the heads.
        sql += " WHERE f.backbone_id = ?"
        args.append(backbone_id)
    rows = db.conn.execute(sql + " ORDER BY c.video_id, c.idx", args).fetchall()
    if not rows:
        raise TrainingError("the library has no stored clip features to train on; index some videos first")
    n_frames = max(r[3] for r in rows)
    video = np.stack([_pad_frames(from_blob(r[4], "float16", (r[3], vision_dim)), n_frames) for r in rows])
    audio = np.zeros((len(rows), audio_dim), np.float16)
    has_audio = np.zeros(len(rows), bool)
    for i, r in enumerate(rows):
        if r[5] is not None:
            audio[i] = from_blob(r[5], "float16", (audio_dim,))
            has_audio[i] = True
    keys = np.array([(r[1], r[2]) for r in rows], np.int64)
    return np.array([r[0] for r in rows], np.int64), keys, video, audio, has_audio


def _load_sentences(db: sqlite_utils.Database, clip_ids: np.ndarray, window: float, text_dim: int):
    rows = db.conn.execute(
        "SELECT c.id, t.id, t.vec, t.kind FROM clips c JOIN transcripts t ON t.video_id = c.video_id "
        "AND t.start < c.end + ? AND t.end > c.start - ? "
        "WHERE t.vec IS NOT NULL AND t.kind IN ('said', 'heard') ORDER BY t.id",
        (window, window),
    ).fetchall()
    sentence_index: dict[int, int] = {}
    vectors: list[np.ndarray] = []
    per_clip: dict[int, list[int]] = defaultdict(list)
    heard: list[bool] = []
    for clip_id, sentence_id, blob, kind in rows:
        if sentence_id not in sentence_index:
            vec = from_blob(blob, "float32")
            if len(vec) != text_dim:
                continue  # written by another text tower
            sentence_index[sentence_id] = len(vectors)
            vectors.append(vec)
            heard.append(kind == "heard")
        per_clip[clip_id].append(sentence_index[sentence_id])
    sentences = np.stack(vectors) if vectors else np.zeros((0, text_dim), np.float32)
    ids = np.array(list(sentence_index), np.int64)
    clip_sentences = [np.array(per_clip.get(int(c), []), np.int64) for c in clip_ids]
    return sentences, ids, clip_sentences, np.array(heard, bool)


def load_training_data(
    db: sqlite_utils.Database,
    *,
    backbone_id: str | None = None,
    vision_dim: int | None = None,
    audio_dim: int | None = None,
    text_dim: int | None = None,
    window: float = 2.0,
    tail_id: str | None = None,
) -> TrainingData:
    """Everything a run needs, in (video, clip) order. ``tail_id``: the parent is a deep model and
    its video features are that tail's ``tuned_features``."""
    default = get_config(DEFAULT_MODEL)  # widths of the default model unless the caller's differ
    vision_dim, audio_dim = vision_dim or default.vision_dim, audio_dim or default.audio_dim
    text_dim = text_dim or default.text_dim
    clip_ids, keys, video, audio, has_audio = _load_features(db, backbone_id, vision_dim, audio_dim, tail_id)
    sentences, sentence_ids, clip_sentences, heard = _load_sentences(db, clip_ids, window, text_dim)
    return TrainingData(
        clip_ids,
        torch.from_numpy(keys),
        torch.from_numpy(video),
        torch.from_numpy(audio),
        torch.from_numpy(has_audio),
        torch.from_numpy(sentences),
        torch.from_numpy(sentence_ids),
        clip_sentences,
        torch.from_numpy(heard),
    )


@dataclass
class Batch:
    keys: torch.Tensor  # [B, 2]
    video: torch.Tensor  # [B, T, 1280]
    audio_rows: torch.Tensor  # [A] indices into the batch of the clips that have audio
    audio: torch.Tensor  # [A, audio_dim]
    text: torch.Tensor  # [S_b, 384] the sentences of the batch's clips
    text_ids: torch.Tensor  # [S_b] transcripts row ids
    text_mask: torch.Tensor  # [B, S_b] bool: sentence j is a positive of clip i
    text_heard: torch.Tensor | None = None  # [S_b] bool: sentence j is a sound caption ('heard')


def make_batch(data: TrainingData, rows: np.ndarray, device: torch.device) -> Batch:
    """Gather one batch and move it to ``device`` (pinned + non_blocking on CUDA)."""
    index = torch.from_numpy(np.asarray(rows, np.int64))
    own = [data.clip_sentences[r] for r in rows]
    used = np.unique(np.concatenate(own)) if any(len(o) for o in own) else np.zeros(0, np.int64)
    column = {int(s): j for j, s in enumerate(used)}
    text_mask = torch.zeros(len(rows), len(used), dtype=torch.bool)
    for i, sentences in enumerate(own):
        text_mask[i, [column[int(s)] for s in sentences]] = True
    has_audio = data.has_audio[index]
    audio_rows = torch.nonzero(has_audio).flatten()
    used_t = torch.from_numpy(used)
    parts = {
        "keys": data.keys[index],
        "video": data.video[index],
        "audio_rows": audio_rows,
        "audio": data.audio[index[audio_rows]],
        "text": data.sentences[used_t],
        "text_ids": data.sentence_ids[used_t],
        "text_mask": text_mask,
        "text_heard": (data.sentence_heard[used_t] if data.sentence_heard is not None
                       else torch.zeros(len(used), dtype=torch.bool)),
    }
    return Batch(**{k: _to_device(v, device) for k, v in parts.items()})


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def epoch_order(
    data: TrainingData, batch_size: int, epoch: int, seed: int, gdt_shift: int = 0
) -> list[np.ndarray]:
    """The batches of one epoch, reproducible from (seed, epoch) so a resumed run continues exactly.

    With ``gdt_shift`` > 0 half of each batch are random anchors and the other half a neighbour of
    each (same video, at most ``gdt_shift`` clips away), so time-shift positives actually occur.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(data))
    if gdt_shift > 0:
        order = _with_neighbours(data, order, gdt_shift, rng)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _with_neighbours(
    data: TrainingData, anchors: np.ndarray, shift: int, rng: np.random.Generator
) -> np.ndarray:
    keys = data.keys.numpy()
    position = {(int(v), int(i)): r for r, (v, i) in enumerate(keys)}
    out: list[int] = []
    for r in anchors[: max(1, len(anchors) // 2)]:
        video, idx = int(keys[r, 0]), int(keys[r, 1])
        options = [
            position[(video, idx + d)]
            for d in range(-shift, shift + 1)
            if d != 0 and (video, idx + d) in position
        ]
        out.append(int(r))
        out.append(int(rng.choice(options)) if options else int(rng.integers(len(keys))))
    return np.array(out, np.int64)
