"""The embedded player: starts at the moment, marks the moment's range on the timeline.

QtMultimedia is optional at run time: when its backend cannot load (a headless test machine, a
broken codec pack) the panel still shows the moment and offers the system player instead.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import QRect, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QStackedWidget,
    QStyle,
    QStyleOptionSlider,
    QVBoxLayout,
    QWidget,
)

from app.format import clock, span
from engine.search.moments import Moment

log = logging.getLogger(__name__)


class MomentSlider(QSlider):
    """A timeline (milliseconds) that paints the moment's range as a band behind the groove."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.range_ms: tuple[int, int] | None = None
        self.setMinimumHeight(26)

    def set_moment_range(self, start_ms: int | None, end_ms: int | None) -> None:
        self.range_ms = None if start_ms is None or end_ms is None else (start_ms, end_ms)
        self.update()

    def _x_of(self, value: int, groove: QRect) -> int:
        span_ = max(1, self.maximum() - self.minimum())
        return groove.left() + round((value - self.minimum()) / span_ * groove.width())

    def paintEvent(self, e: QPaintEvent) -> None:
        if self.range_ms is not None and self.maximum() > self.minimum():
            opt = QStyleOptionSlider()
            self.initStyleOption(opt)
            groove = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                                 QStyle.SubControl.SC_SliderGroove, self)
            x0, x1 = (self._x_of(v, groove) for v in self.range_ms)
            p = QPainter(self)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(237, 137, 54, 170))
            p.drawRoundedRect(QRect(x0, groove.center().y() - 6, max(3, x1 - x0), 12), 3, 3)
            p.end()
        super().paintEvent(e)


class PlayerPanel(QWidget):
    more_like_this = Signal(object)     # Moment
    open_external = Signal(object)      # Moment
    reveal = Signal(object)             # Moment

    def __init__(self, multimedia: bool = True, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.moment: Moment | None = None
        self.pending_seek_ms: int | None = None
        self.player = None
        self.audio = None
        self.video = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        self.title = QLabel("<b>Nothing playing</b>")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.title.setWordWrap(True)
        lay.addWidget(self.title)
        self.screen = QStackedWidget()
        self.placeholder = QLabel("Select a result and press Enter to watch the moment here.")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setStyleSheet("background:#1a202c; color:#cbd5e0; padding:16px;")
        self.screen.addWidget(self.placeholder)
        self.screen.setMinimumSize(320, 180)
        lay.addWidget(self.screen, 1)
        # QtMultimedia (FFmpeg, audio output) is set up on the first play, not at start-up:
        # it costs ~50-100 ms and the window must appear fast.
        self._want_multimedia = multimedia

        self.slider = MomentSlider()
        self.slider.setEnabled(False)
        self.slider.sliderMoved.connect(self._seek)
        lay.addWidget(self.slider)
        row = QHBoxLayout()
        self.play_btn = QPushButton("Play")
        self.play_btn.setEnabled(False)
        self.play_btn.clicked.connect(self.toggle)
        self.replay_btn = QPushButton("⟲ Moment")
        self.replay_btn.setToolTip("Jump back to the start of the moment")
        self.replay_btn.setEnabled(False)
        self.replay_btn.clicked.connect(self.replay)
        self.time_label = QLabel("0:00 / 0:00")
        row.addWidget(self.play_btn)
        row.addWidget(self.replay_btn)
        row.addWidget(self.time_label, 1)
        lay.addLayout(row)
        actions = QHBoxLayout()
        self.like_btn = QPushButton("More like this")
        self.ext_btn = QPushButton("Open in player")
        self.ext_btn.setToolTip("Open the file in the system's video player")
        self.reveal_btn = QPushButton("Show in folder")
        self.reveal_btn.setToolTip("Reveal the file in the file manager")
        for b, sig in ((self.like_btn, self.more_like_this), (self.ext_btn, self.open_external),
                       (self.reveal_btn, self.reveal)):
            b.setEnabled(False)
            b.clicked.connect(lambda _=False, s=sig: self.moment is not None and s.emit(self.moment))
            actions.addWidget(b)
        lay.addLayout(actions)

    # ---- multimedia --------------------------------------------------------------------
    def _init_multimedia(self) -> None:
        self._want_multimedia = False   # one attempt only
        if os.environ.get("MMVSEARCH_NO_PLAYER"):
            # Headless test runs: QtMultimedia's FFmpeg backend can deadlock in stop() without a
            # display or sound card, so the embedded player is left out there.
            log.info("embedded player disabled by MMVSEARCH_NO_PLAYER")
            return
        try:
            from PySide6.QtMultimedia import QAudioOutput, QMediaDevices, QMediaPlayer
            from PySide6.QtMultimediaWidgets import QVideoWidget
        except ImportError as exc:  # Addons missing: the rest of the app still works
            log.warning("QtMultimedia unavailable: %s", exc)
            return
        self.player = QMediaPlayer(self)
        self.audio = None
        if QMediaDevices.audioOutputs():  # no sound card: play the picture only
            self.audio = QAudioOutput(self)
            self.player.setAudioOutput(self.audio)
        self.video = QVideoWidget()
        self.player.setVideoOutput(self.video)
        self.screen.addWidget(self.video)
        self.player.durationChanged.connect(self._on_duration)
        self.player.positionChanged.connect(self._on_position)
        self.player.mediaStatusChanged.connect(self._on_status)
        playing = QMediaPlayer.PlaybackState.PlayingState
        self.player.playbackStateChanged.connect(
            lambda s: self.play_btn.setText("Pause" if s == playing else "Play"))
        self.player.errorOccurred.connect(self._on_error)

    @property
    def has_multimedia(self) -> bool:
        return self.player is not None

    def play_moment(self, m: Moment, autoplay: bool = True) -> None:
        """Load ``m``'s file and start at the moment (the seek waits until the media is loaded)."""
        self.moment = m
        self.title.setText(f"<b>{Path(m.path).name}</b><br><span style='color:gray'>{span(m.start, m.end)}"
                           f" · {', '.join(m.reasons) or 'match'}</span>")
        self.title.setToolTip(m.path)
        for b in (self.like_btn, self.ext_btn, self.reveal_btn):
            b.setEnabled(True)
        self.like_btn.setEnabled(m.best_clip_id >= 0)
        self.pending_seek_ms = int(m.start * 1000)
        self._autoplay = autoplay
        self.slider.setRange(0, max(int(m.end * 1000), 1))
        self.slider.setValue(self.pending_seek_ms)
        self.slider.set_moment_range(int(m.start * 1000), int(m.end * 1000))
        if self.player is None and self._want_multimedia:
            self._init_multimedia()
        if self.player is None:
            self.placeholder.setText(f"The built-in player is not available here.\nUse “Open in player” "
                                     f"to watch {Path(m.path).name} from {clock(m.start)}.")
            return
        self.screen.setCurrentWidget(self.video)
        self.play_btn.setEnabled(True)
        self.replay_btn.setEnabled(True)
        self.slider.setEnabled(True)
        current = self.player.source().toLocalFile()
        if current == str(m.path) and self.player.duration() > 0:
            self._apply_pending_seek()
        else:
            self.player.setSource(QUrl.fromLocalFile(str(m.path)))
        if autoplay:
            self.player.play()

    def _apply_pending_seek(self) -> None:
        if self.player is not None and self.pending_seek_ms is not None:
            self.player.setPosition(self.pending_seek_ms)
            self.pending_seek_ms = None

    def _on_status(self, status) -> None:
        from PySide6.QtMultimedia import QMediaPlayer

        if status in (QMediaPlayer.MediaStatus.LoadedMedia, QMediaPlayer.MediaStatus.BufferedMedia):
            self._apply_pending_seek()
        elif status == QMediaPlayer.MediaStatus.InvalidMedia:
            self._on_error(None, "this file cannot be played by the built-in player")

    def _on_error(self, _err, text: str) -> None:
        self.placeholder.setText(f"Cannot play here: {text}\nUse “Open in player” instead.")
        self.screen.setCurrentWidget(self.placeholder)

    def _on_duration(self, ms: int) -> None:
        if ms > 0:
            self.slider.setRange(0, ms)
        self._update_time()

    def _on_position(self, ms: int) -> None:
        if not self.slider.isSliderDown():
            self.slider.setValue(ms)
        self._update_time()

    def _update_time(self) -> None:
        if self.player is not None:
            pos, dur = self.player.position() / 1000, self.player.duration() / 1000
            self.time_label.setText(f"{clock(pos)} / {clock(dur)}")

    def _seek(self, ms: int) -> None:
        if self.player is not None:
            self.player.setPosition(ms)

    def position_s(self) -> float:
        return self.player.position() / 1000 if self.player is not None else 0.0

    def is_playing(self) -> bool:
        if self.player is None:
            return False
        from PySide6.QtMultimedia import QMediaPlayer

        return self.player.playbackState() == QMediaPlayer.PlaybackState.PlayingState

    def toggle(self) -> None:
        if self.player is None:
            return
        from PySide6.QtMultimedia import QMediaPlayer

        if self.player.playbackState() == QMediaPlayer.PlaybackState.PlayingState:
            self.player.pause()
        else:
            self.player.play()

    def replay(self) -> None:
        if self.moment is not None and self.player is not None:
            self.player.setPosition(int(self.moment.start * 1000))
            self.player.play()

    def stop(self) -> None:
        """Release the file (before the window closes, or when its folder is removed)."""
        if self.player is not None:
            self.player.stop()
            self.player.setSource(QUrl())
