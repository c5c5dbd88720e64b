"""The OCR engine: RapidOCR (PaddleOCR PP-OCRv4 detection + recognition as ONNX, inside its wheel).

Chosen over Tesseract by measurement (``bench/bench_ocr.py``, docs/ocr.md): on generated frames
with text over moving backgrounds it reads ~4x more words at ~4x less time per frame, and it
needs no system package. The direction classifier is off (video text is upright) and detection
runs on the frame as decoded (longest side ``MAX_SIDE``), not upscaled, to keep it cheap.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from engine.errors import ModelError

MAX_SIDE = 640           # detector input: 640 px reads ~14 px letters and costs ~0.15 s on one core
MIN_CONFIDENCE = 0.6     # recognition score under which a line is dropped (noise, textures)
INSTALL_HINT = ("on-screen text needs rapidocr-onnxruntime: pip install 'mmvsearch[ocr]' && "
                "pip install --no-deps rapidocr-onnxruntime==1.4.4")
_ALNUM = re.compile(r"[^\W_]", re.UNICODE)


@dataclass
class TextLine:
    text: str
    confidence: float
    box: tuple[float, float, float, float]   # x0, y0, x1, y1 in the frame's pixels


def plausible(text: str, confidence: float) -> bool:
    """A recognised line worth keeping: confident, and at least two letters or digits (round
    shapes alone are read as 'O', dots as '·')."""
    return confidence >= MIN_CONFIDENCE and len(_ALNUM.findall(text)) >= 2


def available() -> bool:
    """Whether the OCR engine is installed (without loading it)."""
    import importlib.util

    return importlib.util.find_spec("rapidocr_onnxruntime") is not None


class TextReader:
    """Reads text lines from a BGR frame. Loads the ONNX sessions on first use; thread-safe."""

    def __init__(self, max_side: int = MAX_SIDE, threads: int = 1):
        self.max_side, self.threads = max_side, threads
        self._engine = None
        self._lock = threading.Lock()

    def _load(self):
        if self._engine is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as exc:
                raise ModelError(INSTALL_HINT) from exc
            self._engine = RapidOCR(intra_op_num_threads=self.threads, inter_op_num_threads=1, use_cls=False,
                                    det_limit_side_len=self.max_side, det_limit_type="max")
        return self._engine

    def read(self, frame_bgr: np.ndarray) -> list[TextLine]:
        """Text lines on the frame, top to bottom, implausible ones dropped."""
        h, w = frame_bgr.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        if scale < 1.0:  # the engine itself never scales below 960 px
            frame_bgr = cv2.resize(frame_bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        with self._lock:
            result, _ = self._load()(np.ascontiguousarray(frame_bgr))
        lines = []
        for box, text, score in result or []:
            pts = np.asarray(box, np.float32)
            text = " ".join(str(text).split())
            if plausible(text, float(score)):
                x0, y0 = pts.min(axis=0) / scale
                x1, y1 = pts.max(axis=0) / scale
                lines.append(TextLine(text, float(score), (float(x0), float(y0), float(x1), float(y1))))
        lines.sort(key=lambda ln: (round(ln.box[1] / 20), ln.box[0]))
        return lines


_shared: TextReader | None = None


def shared_reader() -> TextReader:
    """One reader per process (its ONNX sessions take ~0.3 s and ~60 MB to load)."""
    global _shared
    if _shared is None:
        _shared = TextReader()
    return _shared
