"""The `mmvsearch` command through its real entry point (a subprocess, as a user runs it)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.synth import make_audio, write_wav

pytestmark = pytest.mark.slow
EXE = [sys.executable, "-m", "engine.cli"]


def mmv(library: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([*EXE, "--library", str(library), "--device", "cpu", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=Path(__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def cli_library(tmp_path_factory, generated_dir):
    lib = tmp_path_factory.mktemp("cli-lib")
    folder = tmp_path_factory.mktemp("cli-videos")
    for name in ("red_square_tone.mp4", "blue_circle_noise.mkv"):
        shutil.copy2(generated_dir / name, folder / name)
    (folder / "broken.avi").write_bytes(b"RIFF" + os.urandom(3000))
    res = mmv(lib, "index", str(folder), "--no-transcribe")
    assert res.returncode == 0, res.stderr
    assert "could not index" in res.stderr and "broken.avi" in res.stderr
    return lib, folder


def test_search_json_prints_one_object_per_moment(cli_library, tmp_path):
    lib, _ = cli_library
    wav = write_wav(tmp_path / "tone.wav", make_audio(3.0, tone_hz=440.0))
    res = mmv(lib, "search", "--audio", str(wav), "--top", "3", "--json")
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert rows and {"path", "start", "end", "score", "clip_ids"} <= set(rows[0])
    assert rows[0]["path"].endswith("red_square_tone.mp4") and rows[0]["start"] < rows[0]["end"]
    like = mmv(lib, "search", "--like", str(rows[0]["clip_ids"][0]), "--json")
    assert like.returncode == 0 and like.stdout.strip()


def test_status_and_remove(cli_library, tmp_path):
    lib, folder = cli_library
    res = mmv(lib, "status")
    assert res.returncode == 0
    assert "videos: 3 (2 indexed, 0 pending, 1 unreadable" in res.stdout
    assert "unreadable:" in res.stdout and "broken.avi" in res.stdout
    res = mmv(lib, "remove", str(folder / "broken.avi"))
    assert res.returncode == 0 and "removed 1 video" in res.stdout
    assert "videos: 2 (2 indexed" in mmv(lib, "status").stdout


def test_errors_are_one_line_and_nonzero(cli_library, tmp_path):
    lib, _ = cli_library
    res = mmv(lib, "search", "--audio", str(tmp_path / "nope.wav"))
    assert res.returncode == 1
    assert res.stderr.strip().count("\n") == 0 and "audio file not found" in res.stderr
    res = mmv(lib, "remove", str(tmp_path / "never-added"))
    assert res.returncode == 1 and "nothing in the library" in res.stderr
    res = mmv(lib, "search")  # no query: usage error from argparse
    assert res.returncode == 2


def test_library_from_environment_variable(tmp_path):
    env = {**os.environ, "MMVSEARCH_LIBRARY": str(tmp_path / "envlib")}
    res = subprocess.run([*EXE, "status"], capture_output=True, text=True, env=env, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert res.returncode == 0 and str(tmp_path / "envlib") in res.stdout


def test_killed_indexer_leaves_a_consistent_resumable_library(tmp_path, generated_dir):
    folder = tmp_path / "videos"
    folder.mkdir()
    for i in range(6):
        shutil.copy2(generated_dir / "red_square_tone.mp4", folder / f"v{i}.mp4")
        os.utime(folder / f"v{i}.mp4", (time.time(), time.time() + i))
        with open(folder / f"v{i}.mp4", "ab") as f:
            f.write(bytes([i]) * 16)  # distinct content, so no file is taken for a moved copy of another
    lib = tmp_path / "lib"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([*EXE, "--library", str(lib), "index", str(folder), "--no-transcribe"],
                            env=env, stderr=subprocess.DEVNULL, cwd=Path(__file__).resolve().parents[1])
    db = lib / "library.db"
    deadline = time.time() + 240
    done = 0
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=1) as conn:
                    done = conn.execute("SELECT COUNT(*) FROM videos WHERE status='done'").fetchone()[0]
            except sqlite3.OperationalError:
                done = 0
            if done >= 1:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert done >= 1
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for vid, status in conn.execute("SELECT id, status FROM videos"):
            n = conn.execute("SELECT COUNT(*) FROM clips WHERE video_id=?", (vid,)).fetchone()[0]
            assert (status == "done") == (n > 0)  # a video is either complete or has nothing
    res = mmv(lib, "index", str(folder), "--no-transcribe")
    assert res.returncode == 0, res.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM videos WHERE status='done'").fetchone()[0] == 6
    res = mmv(lib, "search", "--like", "1", "--top", "10", "--json")
    assert res.returncode == 0 and len(res.stdout.splitlines()) >= 5


def test_deep_training_from_the_command_line(cli_library, tmp_path):
    lib = tmp_path / "lib"
    shutil.copytree(cli_library[0], lib)  # training switches models: keep the shared library as it is
    res = mmv(lib, "train", "--deep", "--epochs", "3", "--batch-size", "4")
    assert res.returncode == 0, res.stderr
    assert "decode" in res.stderr and "new model ft-" in res.stderr
    listing = mmv(lib, "models")
    assert listing.returncode == 0 and "deep (own vision tail)" in listing.stdout
    active = next(line for line in listing.stdout.splitlines() if line.startswith("*"))
    assert "ft-" in active
    found = mmv(lib, "search", "--text", "a red square", "--json")
    assert found.returncode == 0 and found.stdout.strip(), found.stderr
