"""A cheap check that spares the OCR engine (~0.2 s a frame) frames it has in effect seen, in ~0.2 ms.

``FrameMemory.same_as_last``: the frame is nearly identical to the last frame that was read (a
still scene, a slide): its text is the last frame's text. Compared on small grayscale thumbnails
by the share of pixels that changed clearly, not the mean change, so a word that appears on an
otherwise still picture counts as a change.

A "no text here" pre-check was tried and dropped: a classic text-region heuristic (morphological
gradient, horizontal closing, word-shaped blobs) passed only 35-43 of 60 generated frames with
text while passing 76-80 of 87 real frames without much text (docs/ocr.md): it would lose text
and save little. The OCR detector itself is the text detector.
"""

from __future__ import annotations

import cv2
import numpy as np

THUMB_WIDTH = 160
CHANGED_LEVEL = 24          # grey levels: a pixel counts as changed above this
SAME_FRACTION = 0.002       # frames with fewer changed pixels than this are "the same"


def thumbnail(bgr: np.ndarray, width: int = THUMB_WIDTH) -> np.ndarray:
    h, w = bgr.shape[:2]
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    return cv2.resize(gray, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)


class FrameMemory:
    """The thumbnail of the last frame read, to skip frames nearly identical to it."""

    def __init__(self) -> None:
        self.last: np.ndarray | None = None

    def same_as_last(self, thumb: np.ndarray) -> bool:
        if self.last is None or self.last.shape != thumb.shape:
            return False
        changed = np.count_nonzero(cv2.absdiff(self.last, thumb) > CHANGED_LEVEL)
        return changed < SAME_FRACTION * thumb.size

    def remember(self, thumb: np.ndarray) -> None:
        self.last = thumb
