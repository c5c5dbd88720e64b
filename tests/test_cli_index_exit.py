"""`mmvsearch index`: a non-zero exit when nothing asked for could be indexed, and progress drawn
with escape codes only on a terminal. Through a subprocess, as a shell or a script sees it; none of
these loads a model (nothing is found to index)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "MMVSEARCH_LIBRARY": str(tmp_path / "lib")}


def _index(tmp_path: Path, *paths: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli", "index", *paths], capture_output=True, text=True,
                          env=_env(tmp_path), timeout=300, cwd=ROOT)


def test_a_missing_path_is_a_one_line_error_and_a_nonzero_exit(tmp_path):
    run = _index(tmp_path, str(tmp_path / "nonexistent"))
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if "error" in line]
    assert errors == [f"mmvsearch: error: nothing could be indexed: no such file or folder: {tmp_path / 'nonexistent'}"]


def test_a_folder_without_videos_is_an_error_too(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not a video")
    run = _index(tmp_path, str(tmp_path / "empty"))
    assert run.returncode == 1 and "nothing could be indexed: no video files found there" in run.stderr
    run = _index(tmp_path, str(tmp_path / "notes.txt"))
    assert run.returncode == 1 and "not a video file" in run.stderr


def test_progress_into_a_pipe_has_no_escape_codes(tmp_path):
    run = _index(tmp_path, str(tmp_path / "nonexistent"))
    assert "looking for videos" in run.stderr
    assert "\x1b" not in run.stderr and "\r" not in run.stderr


def test_progress_on_a_terminal_overwrites_its_line(tmp_path):
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "index", str(tmp_path / "nonexistent")],
                            stdout=subprocess.DEVNULL, stderr=follower, env=_env(tmp_path), cwd=ROOT)
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        out += chunk
    assert proc.wait(timeout=300) == 1
    assert b"\r\x1b[K" in out and b"looking for videos" in out
