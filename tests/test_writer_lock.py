"""One writer per library across processes; the lock dies with its holder (no stale lock)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from engine.errors import LibraryBusyError
from engine.index.lock import WriterLock

HOLD = """
import sys, time
from pathlib import Path
from engine.index.lock import WriterLock
Path(sys.argv[1]).mkdir(parents=True, exist_ok=True)
lock = WriterLock(Path(sys.argv[1]), job="indexing")
lock.acquire(blocking=False)
print("held", flush=True)
time.sleep(60)
"""


def _holder(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_process_gets_a_clear_message_and_the_lock_dies_with_its_holder(tmp_path):
    proc = _holder(tmp_path)
    try:
        lock = WriterLock(tmp_path)
        with pytest.raises(LibraryBusyError) as err:
            lock.acquire(blocking=False)
        assert f"pid {proc.pid}" in str(err.value) and "indexing" in str(err.value)
        assert "Searching works meanwhile" in str(err.value)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert lock.acquire(blocking=False)                    # SIGKILLed holder: no stale lock
    lock.release()


def test_threads_of_one_process_share_it_like_a_lock(tmp_path):
    lock = WriterLock(tmp_path)
    assert lock.acquire(blocking=False)
    assert not lock.acquire(blocking=False)
    lock.release()
    with lock:
        pass
    assert lock.acquire(blocking=False)
    lock.release()


def test_blocking_acquire_waits_for_the_other_process(tmp_path):
    proc = _holder(tmp_path)
    lock = WriterLock(tmp_path)
    t0 = time.monotonic()
    killer = subprocess.Popen([sys.executable, "-c", f"import os, time, signal; time.sleep(1.0); "
                               f"os.kill({proc.pid}, signal.SIGKILL)"])
    try:
        assert lock.acquire(blocking=True, timeout=20)
        assert time.monotonic() - t0 >= 0.9
        lock.release()
    finally:
        killer.wait()
        proc.wait()


def test_library_refuses_a_second_indexer_process(tmp_path):
    """Through the facade: another process holding the library makes index() say so."""
    from engine.api import Library

    proc = _holder(tmp_path / "lib")
    try:
        lib = Library(tmp_path / "lib", device="cpu")
        with pytest.raises(LibraryBusyError, match="is writing to the library"):
            list(lib.index([tmp_path]))
        lib.close()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
def test_a_reader_sees_videos_committed_by_another_writer(tmp_path, generated_dir, model):
    """Two Library objects on one folder (as the app and the CLI would be): the reader's open
    searcher picks up what the writer committed, without reopening anything."""
    import shutil

    from engine.api import Library

    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    shutil.copy2(generated_dir / "red_square_tone.mp4", first)
    shutil.copy2(generated_dir / "blue_circle_noise.mkv", second)
    writer, reader = Library(tmp_path / "lib", device="cpu"), Library(tmp_path / "lib", device="cpu")
    writer._model = reader._model = model
    try:
        list(writer.index([first], transcribe=False))
        before = {m.path for m in reader.search_text("a blue circle", 10).moments}
        assert before <= {str(first / "red_square_tone.mp4")}
        list(writer.index([second], transcribe=False))
        paths = {m.path for m in reader.search_text("a blue circle", 10).moments}
        assert str(second / "blue_circle_noise.mkv") in paths
    finally:
        writer.close()
        reader.close()
