"""Distributed indexing on a local Ray runtime (127.0.0.1, 2 workers) gives the library a local run
gives, survives a worker killed mid-task and a killed driver, and stops on cancel."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.api import Library
from engine.jobs import CancelToken
from tests.synth import make_video

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SCENES = [((230, 20, 20), "square", 440.0), ((20, 40, 230), "circle", None), ((20, 200, 40), "stripes", 150.0),
          ((240, 220, 10), "circle", 880.0), ((200, 20, 200), "square", 300.0), ((20, 200, 200), "stripes", 600.0)]
SHARED = ("video/demos/difffoley__car.mp4", "video/vas/cough__video_00331.mp4")


@pytest.fixture(scope="module")
def videos(tmp_path_factory, shared_media_optional) -> Path:
    root = tmp_path_factory.mktemp("ray-videos")
    for i, (color, shape, tone) in enumerate(SCENES):
        make_video(root / f"scene{i}.mp4", color=color, shape=shape, tone_hz=tone, noise=tone is None, seconds=6.0)
    (root / "broken.mp4").write_bytes(b"not a video at all")
    for rel in shared_media_optional:
        shutil.copy2(rel, root / rel.name)  # a part of the real media, beside the generated videos
    return root


@pytest.fixture(scope="module")
def shared_media_optional() -> list[Path]:
    from tests.conftest import SHARED_MEDIA

    found = [SHARED_MEDIA / rel for rel in SHARED if (SHARED_MEDIA / rel).exists()]
    if not found and (SHARED_MEDIA / "video").is_dir():
        found = sorted((SHARED_MEDIA / "video" / "vas").glob("*.mp4"))[:2]
    return found


@pytest.fixture(scope="module")
def ray_runtime():
    from engine.index.distributed import RayOptions, connect, wait_started

    options = RayOptions("local", workers=2)
    wait_started(connect(options))
    yield options
    ray.shutdown()


def snapshot(root: Path) -> dict:
    """What a library holds, per video path: status, clip windows, and every embedding."""
    conn = sqlite3.connect(root / "library.db")
    out = {}
    for vid, path, status in conn.execute("SELECT id, path, status FROM videos"):
        clips = conn.execute("SELECT id, idx, start, end FROM clips WHERE video_id=? ORDER BY idx", (vid,)).fetchall()
        vecs = {}
        for space, modality in conn.execute("SELECT DISTINCT space, modality FROM embeddings"):
            rows = [conn.execute("SELECT vec FROM embeddings WHERE clip_id=? AND space=? AND modality=?",
                                 (c[0], space, modality)).fetchone() for c in clips]
            if any(r is not None for r in rows):
                vecs[(space, modality)] = np.stack([np.frombuffer(r[0], np.float32) for r in rows])
        out[Path(path).name] = (status, [tuple(c[1:]) for c in clips], vecs)
    conn.close()
    return out


def assert_same_library(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        (sa, ca, va), (sb, cb, vb) = a[name], b[name]
        assert (sa, ca) == (sb, cb), name
        assert va.keys() == vb.keys(), name
        for key in va:
            np.testing.assert_allclose(va[key], vb[key], atol=2e-3, err_msg=f"{name} {key}")


@pytest.fixture(scope="module")
def local_snapshot(tmp_path_factory, videos) -> dict:
    """A local run in a fresh process (as a user runs `mmvsearch index`): Whisper's int8 encoder
    gives ~1e-2 different features under another thread set-up, and earlier tests in this
    process may have changed it (BLAS/OpenMP limits)."""
    root = tmp_path_factory.mktemp("local-lib")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "engine.cli", "--library", str(root), "--device", "cpu", "index",
                    str(videos), "--no-transcribe"], env=env, cwd=ROOT, check=False, timeout=900,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # exits 0: broken.mp4 is a warning
    snap = snapshot(root)
    assert snap["scene0.mp4"][0] == "done"
    return snap


def run_ray(root: Path, videos: Path, options, token=None) -> list:
    lib = Library(root, device="cpu")
    try:
        return list(lib.index([videos], token, transcribe=False, ray=options))
    finally:
        lib.close()


def test_ray_run_equals_local_run(tmp_path, videos, local_snapshot, ray_runtime):
    progress = run_ray(tmp_path / "lib", videos, ray_runtime)
    assert progress[-1].stage == "done"
    snap = snapshot(tmp_path / "lib")
    assert snap["broken.mp4"][0] == "error" and snap["scene0.mp4"][0] == "done"
    assert_same_library(snap, local_snapshot)
    # the HNSW files the driver wrote answer like the local ones: the library searches
    lib = Library(tmp_path / "lib", device="cpu")
    try:
        assert lib.search_like(snap_first_clip(tmp_path / "lib"), top_k=3).moments
    finally:
        lib.close()


def snap_first_clip(root: Path) -> int:
    conn = sqlite3.connect(root / "library.db")
    try:
        return conn.execute("SELECT MIN(id) FROM clips").fetchone()[0]
    finally:
        conn.close()


def _embed_workers() -> list:
    return [p for p in psutil.process_iter(["cmdline"])
            if any("EmbedWorker" in part for part in (p.info["cmdline"] or []))]


def test_a_worker_killed_mid_task_is_retried(tmp_path, videos, local_snapshot, ray_runtime):
    lib = Library(tmp_path / "lib", device="cpu")
    killed = False
    try:
        for p in lib.index([videos], CancelToken(), transcribe=False, ray=ray_runtime):
            if not killed and p.message.startswith("writing"):  # workers are up and busy: kill one
                victims = _embed_workers()
                assert victims, "no Ray worker process found"
                victims[0].kill()
                killed = True
            last = p
    finally:
        lib.close()
    assert killed and last.stage == "done"
    assert_same_library(snapshot(tmp_path / "lib"), local_snapshot)


def test_cancel_stops_the_cluster_and_leaves_the_rest_pending(tmp_path, videos, ray_runtime):
    token = CancelToken()
    lib = Library(tmp_path / "lib", device="cpu")
    try:
        for p in lib.index([videos], token, transcribe=False, ray=ray_runtime):
            if p.message.startswith("writing"):
                token.cancel()
            last = p
    finally:
        lib.close()
    assert last.stage == "cancelled"
    counts = dict(sqlite3.connect(tmp_path / "lib" / "library.db").execute(
        "SELECT status, COUNT(*) FROM videos GROUP BY status"))
    assert counts.get("pending", 0) >= 1


def test_killed_driver_leaves_a_consistent_resumable_library(tmp_path, videos, local_snapshot, ray_runtime):
    lib_dir = tmp_path / "lib"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "engine.cli", "--library", str(lib_dir), "--device", "cpu", "index", str(videos),
           "--no-transcribe", "--ray", "local", "--ray-workers", "2"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and _done_count(lib_dir) < 1:
            assert proc.poll() is None, "the driver ended before it could be killed"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)  # the driver only: its Ray runtime is left to notice
        proc.wait(30)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # then clean up whatever the runtime left behind
        except ProcessLookupError:
            pass
    snap = snapshot(lib_dir)
    statuses = {name: s for name, (s, _, _) in snap.items()}
    assert set(statuses.values()) <= {"done", "pending", "error"} and "done" in statuses.values()
    for name, (status, clips, _) in snap.items():
        if status == "done":  # a finished video is complete and equals the local run's
            assert clips == local_snapshot[name][1]
        else:
            assert not clips, f"{name} is {status} but has clips"
    pending = sum(s == "pending" for s in statuses.values())
    progress = run_ray(lib_dir, videos, ray_runtime)  # resumes: finished videos are not redone
    assert progress[-1].info["files_total"] == pending
    assert_same_library(snapshot(lib_dir), local_snapshot)


def _done_count(lib_dir: Path) -> int:
    if not (lib_dir / "library.db").exists():
        return 0
    try:
        conn = sqlite3.connect(lib_dir / "library.db", timeout=1)
        try:
            return conn.execute("SELECT COUNT(*) FROM videos WHERE status='done'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0


def test_a_checkpoint_that_does_not_fit_leaves_the_workers_on_the_base_model(tmp_path, videos, local_snapshot,
                                                                              ray_runtime):
    """As a local run does (engine.context.load_checkpoint_or_base): the workers fall back to the
    base model and the driver writes under the model that made the vectors, not the broken one."""
    import torch

    lib = Library(tmp_path / "lib", device="cpu")
    try:
        torch.save({"heads": {"not": torch.zeros(1)}}, lib.paths.models_dir / "broken.pt")
        with lib.db.conn:
            lib.db.conn.execute("INSERT INTO models(id, name, checkpoint) VALUES ('broken-ft', 'broken', 'broken.pt')")
            lib.db.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('active_model', 'broken-ft')")
        assert list(lib.index([videos], transcribe=False, ray=ray_runtime))[-1].stage == "done"
        ids = {r[0] for r in lib.db.conn.execute("SELECT DISTINCT model_id FROM embeddings")}
    finally:
        lib.close()
    assert ids == {lib.base_model_id}
    assert_same_library(snapshot(tmp_path / "lib"), local_snapshot)
