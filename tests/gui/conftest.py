"""Qt tests run offscreen, with their own QSettings file, and must leave no thread or timer behind."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# QtMultimedia's FFmpeg backend can deadlock in QMediaPlayer.stop() on a machine with no display
# and no sound card (seen in a teardown); the player's moment logic is tested without it.
os.environ.setdefault("MMVSEARCH_NO_PLAYER", "1")
os.environ.setdefault("QT_LOGGING_RULES", "qt.multimedia*=false")

import pytest
from PySide6.QtCore import QSettings, QThreadPool, QTimer

from tests.gui.fake_library import FakeLibrary, FakeRecorder


@pytest.fixture
def fake_lib(tmp_path):
    lib = FakeLibrary(tmp_path / "library")
    yield lib
    lib.close()


@pytest.fixture
def qsettings(tmp_path):
    return QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, qsettings):
    """Build a MainWindow; on teardown close it and check that every worker thread has ended."""
    from app.main_window import MainWindow

    windows = []

    def make(lib, **kw):
        kw.setdefault("multimedia", False)
        kw.setdefault("qsettings", qsettings)
        w = MainWindow(lib, **kw)
        qtbot.addWidget(w)
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.close()
        assert w.workers.shutdown(30000), "worker threads still running after close"
        assert w.workers.running == 0, "workers still registered"
        assert w.workers.active_threads() == 0
        assert not w.debounce.isActive(), "debounce timer left running"
        assert not w.search_bar.mic.timer.isActive(), "microphone timer left running"
        active = [t.objectName() or repr(t) for t in w.findChildren(QTimer) if t.isActive()]
        assert not active, f"timers left running: {active}"
    # Qt itself may borrow the global pool briefly (image and font loading): wait, then check
    assert QThreadPool.globalInstance().waitForDone(5000), "a thread of the global pool is stuck"


@pytest.fixture
def fake_recorder():
    return FakeRecorder
