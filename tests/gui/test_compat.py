"""The PySide6 6.12.0 / Python 3.11 reference-count work-around keeps a long session alive."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.compat import needs_pin

pytestmark = pytest.mark.gui

LONG_SESSION = """
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
import app  # applies the pin
from PySide6.QtCore import QObject, QPointF, Signal
from PySide6.QtGui import QPainterPath
from PySide6.QtWidgets import QApplication, QLabel
qa = QApplication([])
label, path = QLabel(), QPainterPath()
class Emitter(QObject):
    changed = Signal(object)
e = Emitter()
for i in range(300_000):      # each call used to drop a reference to None / True
    label.setText("x")
    path.lineTo(QPointF(i, i))
    e.changed.emit(i)
print("alive")
"""


def test_needs_pin_only_for_the_broken_combination(monkeypatch):
    assert not needs_pin("6.11.2")
    assert needs_pin("6.12.0") == (sys.version_info < (3, 12) and sys.implementation.name == "cpython"
                                   and not hasattr(sys, "gettotalrefcount"))


def test_a_long_session_does_not_abort():
    out = subprocess.run([sys.executable, "-c", LONG_SESSION], cwd=Path(__file__).resolve().parents[2],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "alive" in out.stdout
