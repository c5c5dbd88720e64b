"""A library stays consistent and resumable: incremental runs, moves, deletions, bad files,
cancel, a full disk."""

from __future__ import annotations

import os
import shutil

import pytest

from engine.api import Library
from engine.errors import DiskFullError
from engine.jobs import CancelToken

pytestmark = pytest.mark.slow


@pytest.fixture
def library(tmp_path, model):
    lib = Library(tmp_path / "lib", device="cpu")
    lib.ctx.adopt_model(model)  # share the session's loaded towers (same base model id)
    yield lib
    lib.close()


@pytest.fixture
def folder(tmp_path, generated_dir):
    dest = tmp_path / "videos"
    dest.mkdir()
    for name in ("red_square_tone.mp4", "blue_circle_noise.mkv"):
        shutil.copy2(generated_dir / name, dest / name)
    return dest


def run(lib, paths, token=None):
    return list(lib.index(paths, token, transcribe=False))


def status_counts(lib):
    return dict(lib.db.conn.execute("SELECT status, COUNT(*) FROM videos GROUP BY status"))


def test_second_run_skips_unchanged_and_picks_up_new_files(library, folder, generated_dir):
    assert run(library, [folder])[-1].info["files_done"] == 2
    again = run(library, [folder])
    assert again[-1].message == "nothing new to index" and again[-1].info["unchanged"] == 2
    shutil.copy2(generated_dir / "silent_yellow.mp4", folder / "new.mp4")
    assert run(library, [folder])[-1].info["files_done"] == 1
    assert status_counts(library) == {"done": 3}


def test_moved_file_keeps_its_embeddings(library, folder):
    run(library, [folder])
    before = library.db.conn.execute("SELECT id FROM clips ORDER BY id").fetchall()
    (folder / "sub").mkdir()
    os.rename(folder / "red_square_tone.mp4", folder / "sub" / "renamed.mp4")
    last = run(library, [folder])[-1]
    assert last.info["moved"] == 1 and last.info["files_total"] == 0
    assert library.db.conn.execute("SELECT id FROM clips ORDER BY id").fetchall() == before
    paths = {m.path for m in library.search_like(before[0][0], top_k=10).moments}
    assert str(folder / "sub" / "renamed.mp4") in paths


def test_deleted_file_disappears_from_results(library, folder):
    run(library, [folder])
    os.remove(folder / "red_square_tone.mp4")
    # Even before a re-scan, results never point at a file that is gone...
    assert all("red_square" not in m.path for m in library.search_text("a red square", top_k=20).moments)
    # ...and a re-scan marks it missing.
    run(library, [folder])
    assert status_counts(library) == {"done": 1, "missing": 1}


def test_corrupt_file_is_reported_and_the_rest_indexed(library, folder):
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(5000))
    last = run(library, [folder])[-1]
    assert last.info["errors"] == 1 and "could not be read" in last.message
    bad = [v for v in library.videos() if v.status == "error"]
    assert len(bad) == 1 and bad[0].path.endswith("corrupt.mp4") and bad[0].error
    assert status_counts(library)["done"] == 2
    assert run(library, [folder])[-1].info["files_total"] == 0  # not retried until the file changes


def test_cancel_mid_index_leaves_a_consistent_resumable_library(library, folder, generated_dir):
    shutil.copy2(generated_dir / "green_stripes_low.webm", folder / "c.webm")
    token = CancelToken()
    progress = []
    for p in library.index([folder], token, transcribe=False):
        progress.append(p)
        if p.stage == "index" and p.done == 1:
            token.cancel()
    assert progress[-1].stage == "cancelled"
    counts = status_counts(library)
    assert counts == {"done": 1, "pending": 2}
    n_clips = library.db.conn.execute("SELECT COUNT(*) FROM clips").fetchone()[0]
    assert n_clips == 3  # only the finished video has clips
    assert run(library, [folder])[-1].info["files_done"] == 2
    assert status_counts(library) == {"done": 3}


def test_full_disk_stops_with_a_clear_error_and_loses_nothing(library, folder, generated_dir):
    run(library, [folder])
    shutil.copy2(generated_dir / "green_stripes_low.webm", folder / "c.webm")
    conn = library.db.conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # SQLite then fails as on a full disk
    with pytest.raises(DiskFullError):
        run(library, [folder])
    conn.execute("PRAGMA max_page_count = 1073741823")
    assert status_counts(library) == {"done": 2, "pending": 1}
    assert run(library, [folder])[-1].info["files_done"] == 1
    assert status_counts(library) == {"done": 3}


def test_remove_folder(library, folder):
    run(library, [folder])
    assert library.remove(folder) == 2
    assert library.videos() == [] and library.folders() == []
    assert library.search_text("a red square").moments == []


def test_cancel_inside_a_long_video_stops_between_clip_chunks(library, folder, monkeypatch):
    import engine.index.indexer as indexer

    monkeypatch.setattr(indexer, "CHUNK_CLIPS", 1)  # every clip is its own CNN call
    token = CancelToken()
    calls = []
    original = library.ctx.model.clip_features

    def clip_features(*args, **kwargs):
        calls.append(1)
        token.cancel()  # the user presses Cancel while the first video's first chunk runs
        return original(*args, **kwargs)

    monkeypatch.setattr(library.ctx.model, "clip_features", clip_features)
    progress = list(library.index([folder], token, transcribe=False))
    assert progress[-1].stage == "cancelled" and len(calls) == 1  # not the video's other clips
    assert status_counts(library) == {"pending": 2}
    assert library.db.conn.execute("SELECT COUNT(*) FROM clips").fetchone()[0] == 0
    monkeypatch.setattr(library.ctx.model, "clip_features", original)
    assert run(library, [folder])[-1].info["files_done"] == 2
