"""Frames and videos with rendered on-screen text and known ground truth (for OCR tests and bench).

Text is drawn with OpenCV's Hershey fonts (always available, no system fonts needed) in several
faces, sizes, colours and placements, over backgrounds that move (a drifting gradient with
moving blobs and some noise), so consecutive frames differ like real footage does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# Distinct, non-stop-word English words (titles, signs, labels); none is an ImageNet-ish trap.
_WORDS = (
    "harbour festival lemonade quarterly budget station platform welcome kitchen museum "
    "orchestra library recipe chapter summary invoice weather forecast tournament final score "
    "bakery market garden bridge highway parking exit hospital pharmacy school theatre "
    "concert ticket airport departure arrival gate vacation sunset mountain river island "
    "birthday wedding graduation project meeting agenda results revenue growth "
    "champion victory penalty goal minute second half team united city rovers"
)
VOCABULARY = tuple(_WORDS.split())

FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_TRIPLEX,
         cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_PLAIN)
COLOURS = ((255, 255, 255), (255, 230, 0), (20, 20, 20), (255, 60, 60), (60, 220, 255))


@dataclass
class TextStyle:
    font: int = cv2.FONT_HERSHEY_SIMPLEX
    scale: float = 1.5            # OpenCV font scale (x ~22 px of cap height at 1.0)
    colour: tuple[int, int, int] = (255, 255, 255)
    thickness: int = 3
    position: tuple[float, float] = (0.1, 0.5)   # left, baseline as fractions of width, height
    box: bool = False             # a dark band behind the text (lower-third style)


@dataclass
class TextEvent:
    start: float
    end: float
    text: str
    style: TextStyle


def background(size: tuple[int, int], t: float, seed: int = 0) -> np.ndarray:
    """RGB frame that moves with ``t``: a drifting colour gradient, three moving blobs, noise."""
    w, h = size
    rng = np.random.default_rng(seed)
    base = rng.uniform(40, 200, size=(2, 3))
    xx = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    phase = 0.5 + 0.5 * np.sin(t * 0.7 + seed)
    img = base[0] * (1 - xx * phase) + base[1] * xx * phase
    img = np.repeat(img, h, axis=0)
    for k in range(3):
        cx = int(w * (0.5 + 0.4 * np.sin(t * (0.5 + 0.3 * k) + k + seed)))
        cy = int(h * (0.5 + 0.35 * np.cos(t * (0.4 + 0.2 * k) + 2 * k)))
        colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
        cv2.circle(img, (cx, cy), int(min(w, h) * (0.12 + 0.05 * k)), colour, -1)
    noise = np.random.default_rng(int(t * 1000) + seed).normal(0, 6, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def draw_text(img: np.ndarray, text: str, style: TextStyle) -> np.ndarray:
    h, w = img.shape[:2]
    x, y = int(style.position[0] * w), int(style.position[1] * h)
    if style.box:
        (tw, th), base = cv2.getTextSize(text, style.font, style.scale, style.thickness)
        cv2.rectangle(img, (x - 8, y - th - 8), (x + tw + 8, y + base + 8), (15, 15, 40), -1)
    cv2.putText(img, text, (x, y), style.font, style.scale, style.colour, style.thickness, cv2.LINE_AA)
    return img


def render(size: tuple[int, int], t: float, events: list[TextEvent], seed: int = 0) -> np.ndarray:
    img = background(size, t, seed)
    for ev in events:
        if ev.start <= t < ev.end:
            draw_text(img, ev.text, ev.style)
    return img


def make_text_video(path: str | Path, events: list[TextEvent], seconds: float, size: tuple[int, int] = (640, 360),
                    fps: int = 10, seed: int = 0) -> Path:
    """A video whose text events appear only between their start and end times."""
    from tests.synth import make_video

    frames = [render(size, i / fps, events, seed) for i in range(int(seconds * fps))]
    return make_video(path, frames=frames, size=size, fps=fps, tone_hz=None, audio=False)


def random_style(rng: np.random.Generator, size: tuple[int, int]) -> TextStyle:
    """A varied but legible style: 5 faces, ~14-60 px letters, 5 colours, optional band."""
    font = FONTS[rng.integers(len(FONTS))]
    scale = float(rng.uniform(0.7, 2.2)) * (1.6 if font == cv2.FONT_HERSHEY_PLAIN else 1.0) * size[0] / 640
    return TextStyle(font=font, scale=scale, colour=COLOURS[rng.integers(len(COLOURS))],
                     thickness=int(rng.integers(2, 4)), position=(float(rng.uniform(0.04, 0.3)),
                                                                  float(rng.uniform(0.2, 0.9))),
                     box=bool(rng.random() < 0.4))


def labelled_frames(n_text: int, n_blank: int, size: tuple[int, int] = (640, 360),
                    seed: int = 0) -> list[tuple[np.ndarray, list[str]]]:
    """(RGB frame, words on it) pairs: ``n_text`` frames with 1-3 words, ``n_blank`` with none."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_text + n_blank):
        words = [] if i >= n_text else list(rng.choice(VOCABULARY, size=int(rng.integers(1, 4)), replace=False))
        img = background(size, float(rng.uniform(0, 30)), seed=int(rng.integers(1000)))
        if words:
            style = random_style(rng, size)
            (tw, _), _ = cv2.getTextSize(" ".join(words), style.font, style.scale, style.thickness)
            left = min(style.position[0], max(0.02, (size[0] - tw - 10) / size[0]))
            style.position = (left, style.position[1])
            draw_text(img, " ".join(words), style)
        out.append((img, [str(w) for w in words]))
    return out
