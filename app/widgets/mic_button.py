"""Record a spoken (or hummed, or barked) query: level meter, elapsed / max time, stop button.

The recorder is created by a factory so tests can pass a fake one; the real one is
``engine.speech.recorder.Recorder`` (imported lazily: it pulls sounddevice/PortAudio).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QRect, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from app.icons import icon

SAMPLE_RATE = 16000
MAX_SECONDS = 30.0
IDLE_TIP = "Search by sound: record what you say, hum or play (Ctrl+M)"


class RecorderLike(Protocol):
    level: float
    elapsed: float

    def start(self) -> None: ...
    def stop(self) -> np.ndarray: ...


def default_recorder_factory() -> RecorderLike:
    from engine.speech.recorder import Recorder  # lazy: sounddevice loads PortAudio

    return Recorder(device=None, sample_rate=SAMPLE_RATE, max_seconds=MAX_SECONDS)


class LevelMeter(QWidget):
    """A horizontal bar, green to red, for the microphone level (0..1)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.level = 0.0
        self.setMinimumSize(90, 12)
        self.setMaximumHeight(14)

    def set_level(self, level: float) -> None:
        self.level = float(min(1.0, max(0.0, level)))
        self.update()

    def paintEvent(self, e: QPaintEvent) -> None:
        p = QPainter(self)
        r = self.rect().adjusted(0, 0, -1, -1)
        p.setPen(QColor(0, 0, 0, 60))
        p.setBrush(QColor("#edf2f7"))
        p.drawRoundedRect(r, 4, 4)
        w = int(r.width() * self.level)
        if w > 0:
            colour = QColor("#38a169" if self.level < 0.7 else "#dd6b20" if self.level < 0.9 else "#e53e3e")
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(colour)
            p.drawRoundedRect(QRect(r.left(), r.top(), w, r.height()), 4, 4)
        p.end()


class MicButton(QWidget):
    """A microphone button; while recording it shows the meter, the time and a Stop button.

    Emits ``recorded(wave)`` (float32 mono at 16 kHz) after Stop or at ``max_seconds``, and
    ``failed(exc)`` when the microphone cannot be opened.
    """

    recorded = Signal(object)
    failed = Signal(object)
    state_changed = Signal(bool)   # recording?

    def __init__(self, recorder_factory: Callable[[], Any] | None = None, max_seconds: float = MAX_SECONDS,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.recorder_factory = recorder_factory or default_recorder_factory
        self.max_seconds = max_seconds
        self.recorder: Any = None
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.button = QPushButton(icon("mic"), "")
        self.button.setToolTip(IDLE_TIP)
        self.button.setFixedWidth(40)
        self.button.clicked.connect(self.toggle)
        self.meter = LevelMeter()
        self.time = QLabel()
        self.stop_btn = QPushButton("Stop && search")
        self.stop_btn.clicked.connect(self.stop)
        for w in (self.meter, self.time, self.stop_btn):
            w.setVisible(False)
        lay.addWidget(self.button)
        lay.addWidget(self.meter)
        lay.addWidget(self.time)
        lay.addWidget(self.stop_btn)
        # 30 Hz is enough for a meter and costs nothing; it only runs while recording.
        self.timer = QTimer(self, interval=33)
        self.timer.timeout.connect(self._tick)

    @property
    def recording(self) -> bool:
        return self.recorder is not None

    def toggle(self) -> None:
        if self.recording:
            self.stop()
        else:
            self.start()

    def start(self) -> None:
        try:
            rec = self.recorder_factory()
            rec.start()
        except Exception as exc:
            self.failed.emit(exc)
            return
        self.recorder = rec
        self.button.setIcon(icon("stop"))
        self.button.setToolTip("Stop recording and search")
        for w in (self.meter, self.time, self.stop_btn):
            w.setVisible(True)
        self.timer.start()
        self.state_changed.emit(True)
        self._tick()

    def _tick(self) -> None:
        if self.recorder is None:
            return
        self.meter.set_level(float(getattr(self.recorder, "level", 0.0)))
        elapsed = float(getattr(self.recorder, "elapsed", 0.0))
        self.time.setText(f"{elapsed:4.1f} / {self.max_seconds:.0f} s")
        if elapsed >= self.max_seconds:
            self.stop()

    def stop(self) -> None:
        rec, self.recorder = self.recorder, None
        self.timer.stop()
        self.button.setIcon(icon("mic"))
        self.button.setToolTip(IDLE_TIP)
        for w in (self.meter, self.time, self.stop_btn):
            w.setVisible(False)
        self.state_changed.emit(False)
        if rec is None:
            return
        try:
            wave = rec.stop()
        except Exception as exc:
            self.failed.emit(exc)
            return
        if wave is None or len(wave) == 0:
            self.failed.emit(RuntimeError("nothing was recorded"))
            return
        self.recorded.emit(np.asarray(wave, dtype=np.float32))

    def cancel(self) -> None:
        """Stop without searching (window closing)."""
        rec, self.recorder = self.recorder, None
        self.timer.stop()
        self.button.setIcon(icon("mic"))
        if rec is not None:
            with contextlib.suppress(Exception):  # closing anyway
                rec.stop()
