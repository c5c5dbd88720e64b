"""A synthetic library at feature level, for tests and demos of the trainer (no media, no backbones).

"Pictures" and "sounds" are clusters of backbone-like features; picture k always comes with sound
k (a red square with a 440 Hz tone...), but the untrained heads project the two towers
independently, so sound -> picture retrieval starts at chance and only training can align them.
Optionally each video has narration sentences from a third cluster family (MiniLM-like vectors).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch

from engine.index.db import set_meta, to_blob, transaction
from engine.models.config import ModelConfig, get_config
from engine.models.heads import FACHeads


@dataclass
class SyntheticSpec:
    n_pairs: int = 4
    videos_per_pair: int = 3
    clips_per_video: int = 4
    frames: int = 2
    noise: float = 0.35
    shared_offset: float = 3.0  # a component every clip shares (as in post-ReLU features)
    sentences_per_video: int = 2  # 0: no transcripts
    silent_every: int = 0  # every n-th video has no audio (0: all have sound)
    seed: int = 0


def fake_base_model(cfg: ModelConfig | None = None, model_id: str | None = None, seed: int = 0):
    """An MMVModel stand-in: untrained FACHeads with a random ImageNet classifier for the ConSE bridge."""
    cfg = cfg or get_config("mmv-base")
    g = torch.Generator().manual_seed(seed)
    classifier = torch.randn(1000, cfg.vision_dim, generator=g) * 0.02
    class_text = torch.nn.functional.normalize(torch.randn(1000, cfg.text_dim, generator=g), dim=-1)
    heads = FACHeads(cfg, classifier, torch.zeros(1000), class_text)
    return SimpleNamespace(heads=heads, model_id=model_id or cfg.base_model_id, config=cfg, device=torch.device("cpu"),
                           tail=None, tail_id=None)


def _centres(rng: np.random.Generator, k: int, dim: int) -> np.ndarray:
    c = rng.standard_normal((k, dim))
    return c / np.linalg.norm(c, axis=1, keepdims=True) * np.sqrt(dim)


def write_synthetic_library(db, spec: SyntheticSpec, cfg: ModelConfig) -> dict[int, int]:
    """Fill ``db`` with videos/clips/features/transcripts; returns {video_id: pair index}."""
    rng = np.random.default_rng(spec.seed)
    clusters = {
        "picture": _centres(rng, spec.n_pairs, cfg.vision_dim),
        "sound": _centres(rng, spec.n_pairs, cfg.audio_dim),
        "text": _centres(rng, spec.n_pairs, cfg.text_dim),
        "offset_v": np.abs(rng.standard_normal(cfg.vision_dim)) * spec.shared_offset,
        "offset_a": np.abs(rng.standard_normal(cfg.audio_dim)) * spec.shared_offset,
    }
    labels: dict[int, int] = {}
    with transaction(db) as conn:
        for n in range(spec.n_pairs * spec.videos_per_pair):
            pair = n // spec.videos_per_pair
            silent = spec.silent_every > 0 and (n + 1) % spec.silent_every == 0
            video_id = _write_video(conn, n + 1, spec, cfg, silent)
            labels[video_id] = pair
            _write_content(conn, video_id, pair, silent, spec, cfg, clusters, rng)
        set_meta(db, "active_model", cfg.base_model_id)
    return labels


def _write_content(conn, video_id: int, pair: int, silent: bool, spec: SyntheticSpec, cfg: ModelConfig,
                   clusters: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    for idx in range(spec.clips_per_video):
        noise_v = spec.noise * rng.standard_normal((spec.frames, cfg.vision_dim))
        frames = clusters["picture"][pair] + clusters["offset_v"] + noise_v
        audio = None
        if not silent:
            noise_a = spec.noise * rng.standard_normal(cfg.audio_dim)
            audio = clusters["sound"][pair] + clusters["offset_a"] + noise_a
        _write_clip(conn, video_id, idx, frames, audio, cfg)
    for s in range(spec.sentences_per_video):
        vec = clusters["text"][pair] + spec.noise * rng.standard_normal(cfg.text_dim)
        vec = (vec / np.linalg.norm(vec)).astype(np.float32)
        start = s * 4.0 * spec.clips_per_video / max(1, spec.sentences_per_video)
        conn.execute(
            "INSERT INTO transcripts(video_id, kind, start, end, text, vec) VALUES (?,?,?,?,?,?)",
            (video_id, "said", start, start + 3.0, f"pair {pair} sentence {s}", to_blob(vec)),
        )


def _write_video(conn, n: int, spec: SyntheticSpec, cfg: ModelConfig, silent: bool) -> int:
    cur = conn.execute(
        "INSERT INTO videos(path, size, mtime, phash, duration, has_audio, status, backbone_id, "
        "clip_seconds, added_at, indexed_at) VALUES (?, 1, 0, ?, ?, ?, 'done', ?, 4.0, ?, ?)",
        (
            f"/synthetic/video{n:03d}.mp4",
            f"h{n}",
            4.0 * spec.clips_per_video,
            int(not silent),
            cfg.backbone_id,
            time.time(),
            time.time(),
        ),
    )
    return int(cur.lastrowid)


def _write_clip(
    conn, video_id: int, idx: int, frames: np.ndarray, audio: np.ndarray | None, cfg: ModelConfig
):
    cur = conn.execute(
        "INSERT INTO clips(video_id, idx, start, end) VALUES (?, ?, ?, ?)",
        (video_id, idx, 4.0 * idx, 4.0 * idx + 4.0),
    )
    conn.execute(
        "INSERT INTO features(clip_id, backbone_id, n_frames, video, audio) VALUES (?, ?, ?, ?, ?)",
        (
            cur.lastrowid,
            cfg.backbone_id,
            len(frames),
            to_blob(frames, "float16"),
            None if audio is None else to_blob(audio, "float16"),
        ),
    )
