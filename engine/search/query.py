"""Queries, encoded once: what every search channel matches against.

A ``Query`` carries the query's vectors by the space they live in; each channel takes the ones it
needs. How a recording becomes a vector is ``embed_audio_query`` and nothing else, so a better
audio embedding is a change to that one function.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import MediaError, QueryError
from engine.index.db import from_blob

if TYPE_CHECKING:
    from engine.models.mmv import MMVModel


@dataclass
class Query:
    """An encoded query.

    ``vectors`` by name:
      "words"    the text tower's features of the text as typed (transcripts are matched with it);
      "picture"  text only: the S_vat vector that looks for pictures of the text;
      "vat"      the query in S_vat (a text as typed, or an image);
      "va"       the query in S_va (a recording, an image, or the clip of "more like this");
      "va_audio" "more like this" only: the clip's own sound in S_va.
    """

    kind: str                                   # text | audio | image | like (fusion.COMBINE)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    text: str | None = None                     # the text, or what a recording said
    weight: float = 1.0                         # scales the sound-alike channels of a spoken recording
    exclude_clip: int | None = None             # "more like this" never returns its own clip
    spoken: Query | None = None                 # a recording's transcript, searched as a text query too


def text_query(model: MMVModel, text: str) -> Query:
    text = (text or "").strip()
    if not text:
        raise QueryError("the text query is empty")
    words, picture = model.text_query(text)
    vat = model.project_text(words[None])[0]
    return Query("text", {"words": words, "picture": picture, "vat": vat}, text=text)


def embed_audio_query(model: MMVModel, wave: np.ndarray) -> np.ndarray:
    """A recording (mono float32 at the model's sample rate) as one S_va vector, as one clip."""
    return model.encode_audio(wave)["va"][0]


def audio_query(model: MMVModel, wave: np.ndarray) -> Query:
    """Sound-alike vectors plus, when the recording contains speech, its transcript as a text query.

    A recording that is mostly speech only "sounds like a voice": its sound-alike hits are scaled
    down by the share of speech, so the words decide.
    """
    from engine.speech.query import speech_fraction, spoken_text

    va = embed_audio_query(model, wave)
    sr = model.config.sample_rate
    transcript = spoken_text(wave, sr, device=model.device.type)
    weight = (1.0 - speech_fraction(wave, sr)) if transcript else 1.0
    spoken = text_query(model, transcript) if transcript else None
    return Query("audio", {"va": va}, text=transcript, weight=weight, spoken=spoken)


def image_query(model: MMVModel, bgr: np.ndarray) -> Query:
    from engine.media.frames import prepare

    emb = model.encode_image(prepare(bgr, model.config.image_size))
    return Query("image", {"va": emb["va"][0], "vat": emb["vat"][0]})


def like_query(conn: sqlite3.Connection, model: MMVModel, clip_id: int) -> Query:
    """An indexed clip's own stored vectors (no decoding)."""
    vecs = {(r[0], r[1]): from_blob(r[2]) for r in conn.execute(
        "SELECT space, modality, vec FROM embeddings WHERE clip_id=? AND model_id=?", (clip_id, model.model_id))}
    if ("va", "video") not in vecs:
        raise QueryError(f"clip {clip_id} is not in the index of model {model.model_id}")
    vectors = {"va": vecs[("va", "video")]}
    if ("va", "audio") in vecs:
        vectors["va_audio"] = vecs[("va", "audio")]
    return Query("like", vectors, exclude_clip=clip_id)


def load_wave(audio: str | Path | np.ndarray, sample_rate: int, model_rate: int) -> np.ndarray:
    """A query recording as mono float32 at ``model_rate``: a file, or samples at ``sample_rate``."""
    if isinstance(audio, np.ndarray):
        wave = audio.astype(np.float32).reshape(-1)
        if sample_rate != model_rate:
            from engine.media.audio import resample  # PyAV: imported by audio queries only

            wave = resample(wave, sample_rate, model_rate)
    else:
        from engine.media.audio import load_audio  # PyAV: imported by audio queries only

        path = Path(audio)
        if not path.exists():
            raise QueryError(f"audio file not found: {path}")
        try:
            wave = load_audio(path, model_rate)
        except MediaError as exc:
            raise QueryError(str(exc)) from exc
        if wave is None:
            raise QueryError(f"{path.name} has no audio stream")
    if wave.size < model_rate // 10:
        raise QueryError("the recording is too short (less than 0.1 s)")
    return wave


def load_image(image: str | Path | np.ndarray) -> np.ndarray:
    """A query picture as BGR uint8 (OpenCV's order): a file, or an array passed through."""
    if isinstance(image, np.ndarray):
        return image
    import cv2

    if not Path(image).exists():
        raise QueryError(f"image file not found: {image}")
    bgr = cv2.imread(str(image), cv2.IMREAD_COLOR)
    if bgr is None:
        raise QueryError(f"cannot read image {Path(image).name}")
    return bgr
