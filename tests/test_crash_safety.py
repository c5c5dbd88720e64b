"""Crash safety, proven: the indexer is SIGKILLed at random points, again and again, and after
each kill the library must open consistent, the next run must not redo finished files, and the
end state must equal an uninterrupted run's (videos, clips, vectors; HNSW files holding exactly
SQLite's vectors). Two phases: a first index, then re-indexing changed files (plus one new and
one deleted). Rerun: pytest tests/test_crash_safety.py -m slow -s (prints kills made/survived).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.ann_check import assert_index_matches_db
from tests.synth import make_video

ROOT = Path(__file__).resolve().parents[1]
KILLS_WANTED = int(os.environ.get("MMV_CRASH_KILLS", "20"))
COLORS = [(230, 20, 20), (20, 40, 230), (20, 200, 40), (240, 220, 10), (200, 20, 200), (20, 200, 200),
          (120, 60, 0), (0, 0, 0)]


def _videos_phase1(folder: Path) -> None:
    for i, color in enumerate(COLORS):
        make_video(folder / f"v{i}.mp4", color=color, shape="square" if i % 2 else "circle",
                   tone_hz=200.0 + 60 * i, seconds=3.0 + (i % 3) * 3, size=(96, 72), audio=i != 3)


def _videos_phase2(folder: Path) -> None:
    """Rewrite three files in place (new content, new size), add one, delete one."""
    for i in (0, 2, 5):
        make_video(folder / f"v{i}.mp4", color=COLORS[(i + 3) % 8], shape="stripes", tone_hz=900.0 - 50 * i,
                   seconds=5.0, size=(96, 72))
    make_video(folder / "new.mp4", color=(90, 90, 90), shape="circle", tone_hz=300.0, seconds=4.0, size=(96, 72))
    (folder / "v7.mp4").unlink()


def _cmd(lib: Path, folder: Path) -> list[str]:
    return [sys.executable, "-m", "engine.cli", "--library", str(lib), "--device", "cpu", "index", str(folder),
            "--no-transcribe"]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "OMP_NUM_THREADS": "1"}


def _run(lib: Path, folder: Path, kill_after: float | None, early: bool = False) -> tuple[bool, float]:
    """Run the indexer; with ``kill_after``, SIGKILL it that many seconds after its first file
    starts (``early``: after its start, while it loads, scans and registers files). Returns
    (killed, seconds from the first file to the end)."""
    proc = subprocess.Popen(_cmd(lib, folder), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=_env(),
                            cwd=ROOT)
    started = threading.Event()
    seen = bytearray()

    def read():
        for chunk in iter(lambda: proc.stderr.read1(4096), b""):
            seen.extend(chunk)
            if b" files, " in seen or b"nothing new" in seen:
                started.set()
        started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not early:
        started.wait(300)
    t0 = time.monotonic()
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=600)
    reader.join(10)
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"indexer failed ({proc.returncode}): {bytes(seen)[-2000:].decode(errors='replace')}")
    return proc.returncode == -signal.SIGKILL, time.monotonic() - t0


def _state(lib: Path) -> dict:
    conn = sqlite3.connect(str(lib / "library.db"))
    try:
        videos = {Path(p).name: s for p, s in conn.execute("SELECT path, status FROM videos")}
        clips = {(Path(p).name, i): (round(s, 4), round(e, 4)) for p, i, s, e in conn.execute(
            "SELECT v.path, c.idx, c.start, c.end FROM clips c JOIN videos v ON v.id=c.video_id")}
        vecs = {(Path(p).name, i, m, s, mo): np.frombuffer(b, np.float32) for p, i, m, s, mo, b in conn.execute(
            "SELECT v.path, c.idx, e.model_id, e.space, e.modality, e.vec FROM embeddings e "
            "JOIN clips c ON c.id=e.clip_id JOIN videos v ON v.id=c.video_id")}
        done_at = {Path(p).name: t for p, t in conn.execute("SELECT path, indexed_at FROM videos WHERE status='done'")}
    finally:
        conn.close()
    return {"videos": videos, "clips": clips, "vecs": vecs, "done_at": done_at}


def _check_consistent(lib: Path, repair: bool) -> None:
    """The library opens; SQLite is intact; every done video is whole; every HNSW file is exact,
    after the repair that opening does (``repair``) or as saved (a completed run)."""
    from engine.index import db as dbmod
    from engine.index.ann import open_index

    db = dbmod.connect(lib / "library.db")
    conn = db.conn
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        half = conn.execute(
            "SELECT v.path FROM videos v WHERE v.status='done' AND (NOT EXISTS (SELECT 1 FROM clips c WHERE "
            "c.video_id=v.id) OR EXISTS (SELECT 1 FROM clips c WHERE c.video_id=v.id AND NOT EXISTS "
            "(SELECT 1 FROM embeddings e WHERE e.clip_id=c.id AND e.space='va' AND e.modality='video')))").fetchall()
        assert half == [], f"half-written videos: {half}"
        for manifest in sorted((lib / "ann").glob("*/*.json")):
            model, (space, modality) = manifest.parent.name, manifest.stem.split("_")
            dim = json.loads(manifest.read_text())["dim"]
            if repair:
                open_index(conn, lib / "ann", model, space, modality, dim)
            assert_index_matches_db(conn, lib / "ann", model, space, modality, dim, atol=0)
        leftovers = [p.name for p in (lib / "ann").glob("*/*") if p.suffix == ".tmp"]
        assert not repair or leftovers == [], leftovers
    finally:
        conn.close()


def _assert_same_end_state(got: dict, want: dict) -> None:
    assert got["videos"] == want["videos"]
    assert got["clips"] == want["clips"]
    assert got["vecs"].keys() == want["vecs"].keys()
    worst = max(float(np.abs(got["vecs"][k] - want["vecs"][k]).max()) for k in want["vecs"])
    assert worst < 1e-4, f"vectors differ from the uninterrupted run by {worst}"


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_sigkilled_indexer_always_resumes_to_the_uninterrupted_result(tmp_path):
    media = tmp_path / "media"
    _videos_phase1(media / "p1")
    shutil.copytree(media / "p1", media / "p2")
    _videos_phase2(media / "p2")
    # the uninterrupted reference, phase by phase (the folder path is the same in every library)
    folder = tmp_path / "videos"
    shutil.copytree(media / "p1", folder, copy_function=shutil.copy2)
    ref = tmp_path / "ref"
    _, span1 = _run(ref, folder, None)
    want1 = _state(ref)
    _replace(folder, media / "p2")
    _, span2 = _run(ref, folder, None)
    want2 = _state(ref)
    _check_consistent(ref, repair=False)

    rng = random.Random(11)
    kills = survived = cycles = 0
    while kills < KILLS_WANTED and cycles < 8:
        cycles += 1
        lib = tmp_path / f"lib{cycles}"
        shutil.rmtree(folder)
        shutil.copytree(media / "p1", folder, copy_function=shutil.copy2)
        for phase, span, want in ((1, span1, want1), (2, span2, want2)):
            if phase == 2:
                _replace(folder, media / "p2")
            finished_before: dict = {}
            stale: dict = {}  # phase 1's finish times of the files phase 2 changes: those must be redone
            if phase == 2:  # what phase 1 finished and phase 2 did not change must not be redone
                changed = {"v0.mp4", "v2.mp4", "v5.mp4", "v7.mp4"}
                stale = {n: t for n, t in _state(lib)["done_at"].items() if n in changed}
                finished_before = {n: t for n, t in _state(lib)["done_at"].items() if n not in changed}
            while True:
                early = rng.random() < 0.2
                killed, _ = _run(lib, folder, rng.uniform(0.5, 4.0) if early else rng.uniform(0.0, span * 1.1), early)
                if killed:
                    kills += 1
                    _check_consistent(lib, repair=True)
                    survived += 1
                now = _state(lib)
                redone = [n for n, t in finished_before.items() if now["done_at"].get(n) != t]
                assert not redone, f"finished files were indexed again: {redone}"
                # a run killed before its scan leaves the changed files' phase-1 rows: not finished yet
                finished_before = {n: t for n, t in now["done_at"].items() if stale.get(n) != t}
                if not killed:
                    break
            _assert_same_end_state(_state(lib), want)
            _check_consistent(lib, repair=False)
    print(f"\ncrash safety: {survived} of {kills} SIGKILLs survived over {cycles} cycles "
          f"(indexing spans {span1:.1f} s / {span2:.1f} s)")
    report = {"kills": kills, "survived": survived, "cycles": cycles, "span_s": [span1, span2],
              "load": os.getloadavg()[0]}
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "crash_safety.json").write_text(json.dumps(report, indent=2))
    assert kills >= KILLS_WANTED and survived == kills


def _replace(folder: Path, source: Path) -> None:
    """Make ``folder`` hold exactly ``source``'s files, rewriting changed ones in place."""
    for f in folder.iterdir():
        if not (source / f.name).exists():
            f.unlink()
    for f in source.iterdir():
        target = folder / f.name
        if not target.exists() or target.read_bytes() != f.read_bytes():
            shutil.copy2(f, target)


def _train_invariants(lib: Path, base_before: str) -> str:
    """After a killed ``train``: the active model is the previous one or a completely published
    new one (registered, checkpoint on disk, a vector for every clip), and its index is exact."""
    from engine.index import db as dbmod
    from engine.index.ann import open_index

    db = dbmod.connect(lib / "library.db")
    conn = db.conn
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        row = conn.execute("SELECT value FROM meta WHERE key='active_model'").fetchone()
        active = row[0] if row else base_before
        if active != base_before:
            ckpt = conn.execute("SELECT checkpoint FROM models WHERE id=?", (active,)).fetchone()
            assert ckpt is not None, f"active model {active} is not registered"
            assert (lib / "models" / ckpt[0]).exists(), f"checkpoint of {active} missing"
        n_clips = conn.execute("SELECT COUNT(*) FROM clips").fetchone()[0]
        n_vecs = conn.execute("SELECT COUNT(*) FROM embeddings WHERE model_id=? AND space='va' AND modality='video'",
                              (active,)).fetchone()[0]
        assert n_vecs == n_clips, f"active model {active} has {n_vecs} vectors for {n_clips} clips"
        dim = len(conn.execute("SELECT vec FROM embeddings WHERE model_id=? AND space='va' LIMIT 1",
                               (active,)).fetchone()[0]) // 4
        open_index(conn, lib / "ann", active, "va", "video", dim)
        assert_index_matches_db(conn, lib / "ann", active, "va", "video", dim, atol=0)
        return active
    finally:
        conn.close()


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_sigkilled_training_never_leaves_a_half_switched_model(tmp_path):
    from engine.index import doctor

    folder = tmp_path / "videos"
    _videos_phase1(folder)
    lib = tmp_path / "lib"
    _run(lib, folder, None)
    conn = sqlite3.connect(str(lib / "library.db"))
    base = conn.execute("SELECT DISTINCT model_id FROM embeddings").fetchone()[0]
    conn.close()
    train = [sys.executable, "-m", "engine.cli", "--library", str(lib), "--device", "cpu", "train", "--epochs", "3"]
    t0 = time.monotonic()
    full = subprocess.run(train, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=900)
    span = time.monotonic() - t0
    assert full.returncode == 0, full.stderr[-2000:]
    first = _train_invariants(lib, base)
    assert first != base
    rng = random.Random(5)
    kills = kept = 0
    for _ in range(8):
        proc = subprocess.Popen(train, env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=rng.uniform(0.1, 0.9) * span)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        active = _train_invariants(lib, first)  # the previous model, or a complete new one
        kept += proc.returncode != 0 and active == first
        first = active
    assert kills >= 4 and kept >= 1
    leftovers = doctor.unpublished_models(sqlite3.connect(str(lib / "library.db")))
    doctor.heal(lib)
    assert doctor.unpublished_models(sqlite3.connect(str(lib / "library.db"))) == []
    _train_invariants(lib, first)
    print(f"\ntraining: {kills} SIGKILLs, never half-switched ({kept} before the switch kept the previous model, "
          f"the others landed after it); doctor --heal removed {len(leftovers)} leftovers")
