"""A library on a small filesystem that fills while indexing: a clear message, a library that still
opens consistent, and a re-run that completes once space is freed. Uses a real tmpfs (mounted as
root); skipped where mounting is not permitted."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from engine.errors import DiskFullError
from tests.synth import make_video

pytestmark = pytest.mark.slow


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / f"fs-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_filling_disk_stops_clearly_and_resumes_after_space_is_freed(tmp_path, small_fs, model):
    from engine.api import Library
    from tests.test_crash_safety import _check_consistent

    folder = tmp_path / "videos"
    for i in range(8):
        make_video(folder / f"v{i}.mp4", color=(30 * i, 200 - 20 * i, 90), tone_hz=200.0 + 50 * i, seconds=9.0,
                   size=(96, 72))
    root = small_fs / "lib"
    lib = Library(root, device="cpu")
    lib.ctx.adopt_model(model)
    with pytest.raises(DiskFullError) as err:
        list(lib.index([folder], transcribe=False))
    assert "disk" in str(err.value) and "full" in str(err.value)
    lib.close()
    done_before = _done(root)
    assert len(done_before) < 8
    still_full = Library(root, device="cpu")             # the library still opens on the full disk
    assert still_full.status().n_done == len(done_before)
    still_full.close()
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_fs)], check=True)   # space freed
    _check_consistent(root, repair=True)  # opens consistent; HNSW files repaired to SQLite's vectors
    lib = Library(root, device="cpu")
    lib.ctx.adopt_model(model)
    last = list(lib.index([folder], transcribe=False))[-1]
    lib.close()
    assert last.stage == "done" and last.info["files_done"] == 8 - len(done_before)
    assert len(_done(root)) == 8
    _check_consistent(root, repair=False)
    shutil.rmtree(root, ignore_errors=True)


def _done(root: Path) -> list[str]:
    import sqlite3

    conn = sqlite3.connect(str(root / "library.db"))
    try:
        return [r[0] for r in conn.execute("SELECT path FROM videos WHERE status='done'")]
    finally:
        conn.close()
