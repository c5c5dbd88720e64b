"""Incremental scanning: unchanged files skipped, moves recognised, deletions marked."""

import os
import shutil

from engine.index import db as dbmod
from engine.index.scan import find_videos, partial_hash, plan_scan
from tests.synth import make_video


def _mark_done(db, vid):
    db.conn.execute("UPDATE videos SET status='done', backbone_id='bb', clip_seconds=4.0 WHERE id=?", (vid,))


def test_find_videos_filters_extensions_and_exclusions(tmp_path):
    make_video(tmp_path / "a.mp4", seconds=1)
    make_video(tmp_path / ".hidden" / "b.mp4", seconds=1)
    (tmp_path / "notes.txt").write_text("x")
    files, problems = find_videos([tmp_path, tmp_path / "missing"], ["*/.*"])
    assert [f.name for f in files] == ["a.mp4"]
    assert any("no such file" in p for p in problems)


def test_partial_hash_is_content_based(tmp_path):
    a = make_video(tmp_path / "a.mp4", seconds=1)
    b = tmp_path / "b.mp4"
    shutil.copy(a, b)
    assert partial_hash(a) == partial_hash(b)
    c = make_video(tmp_path / "c.mp4", seconds=1, tone_hz=300.0)
    assert partial_hash(a) != partial_hash(c)


def test_plan_skips_unchanged_adopts_moves_and_marks_missing(tmp_path):
    db = dbmod.connect(tmp_path / "lib" / "library.db")
    folder = tmp_path / "videos"
    a = make_video(folder / "a.mp4", seconds=1)
    b = make_video(folder / "b.mp4", seconds=1, tone_hz=300.0)
    plan = plan_scan(db, [a, b], [folder], 4.0, "bb")
    assert len(plan.to_index) == 2
    for vid, _ in plan.to_index:
        _mark_done(db, vid)
    assert plan_scan(db, [a, b], [folder], 4.0, "bb").unchanged == 2

    moved = folder / "sub" / "renamed.mp4"
    moved.parent.mkdir()
    os.rename(a, moved)
    plan = plan_scan(db, [moved, b], [folder], 4.0, "bb")
    assert plan.moved == 1 and not plan.to_index
    assert db.conn.execute("SELECT COUNT(*) FROM videos WHERE path=?", (str(moved),)).fetchone()[0] == 1

    os.remove(b)
    plan = plan_scan(db, [moved], [folder], 4.0, "bb")
    assert plan.missing == 1
    assert db.conn.execute("SELECT status FROM videos WHERE path=?", (str(b),)).fetchone()[0] == "missing"


def test_changed_file_or_model_is_reindexed(tmp_path):
    db = dbmod.connect(tmp_path / "library.db")
    a = make_video(tmp_path / "a.mp4", seconds=1)
    (vid, _), = plan_scan(db, [a], [tmp_path], 4.0, "bb").to_index
    _mark_done(db, vid)
    assert plan_scan(db, [a], [tmp_path], 4.0, "other-backbone").to_index == [(vid, a)]
    _mark_done(db, vid)
    make_video(a, seconds=2)  # rewritten in place: new size and mtime
    assert plan_scan(db, [a], [tmp_path], 4.0, "bb").to_index == [(vid, a)]


def test_odd_files_are_reported_not_hung_on_or_silently_skipped(tmp_path):
    folder = tmp_path / "v"
    good = make_video(folder / "good.mp4", seconds=1)
    os.mkfifo(folder / "fifo.mp4")
    os.symlink(folder / "gone.mp4", folder / "broken.mp4")
    os.symlink(folder / "loop.mp4", folder / "loop.mp4")
    bad_name = os.fsencode(str(folder)) + b"/bad\xff.mp4"
    with open(bad_name, "wb") as f:
        f.write(good.read_bytes())
    files, problems = find_videos([folder], [])
    assert files == [good]
    text = "\n".join(problems)
    for needle in ("FIFO", "broken symbolic link", "symbolic link loop", "not valid UTF-8"):
        assert needle in text, (needle, problems)
    text.encode("utf-8")  # printable
    db = dbmod.connect(tmp_path / "library.db")
    plan = plan_scan(db, [*files, folder / "fifo.mp4"], [folder], 4.0, "bb")  # a FIFO slipped through
    assert [p.name for _, p in plan.to_index] == ["good.mp4"] and any("FIFO" in p for p in plan.problems)


def test_failed_files_are_retried_only_when_asked(tmp_path):
    db = dbmod.connect(tmp_path / "library.db")
    a = make_video(tmp_path / "a.mp4", seconds=1)
    (vid, _), = plan_scan(db, [a], [tmp_path], 4.0, "bb").to_index
    db.conn.execute("UPDATE videos SET status='error', error='x' WHERE id=?", (vid,))
    assert plan_scan(db, [a], [tmp_path], 4.0, "bb").failed_before == 1
    assert plan_scan(db, [a], [tmp_path], 4.0, "bb", retry_errors=True).to_index == [(vid, a)]


def test_a_file_registered_by_another_process_meanwhile_is_not_a_crash(tmp_path, monkeypatch):
    """The scan hashes outside its transaction; a row inserted in between must not break UNIQUE."""
    from engine.index import scan

    db = dbmod.connect(tmp_path / "library.db")
    a = make_video(tmp_path / "a.mp4", seconds=1)
    other = dbmod.connect(tmp_path / "library.db")
    real_hash = scan.partial_hash

    def hash_and_race(path):
        h = real_hash(path)
        other.conn.execute("INSERT INTO videos(path, size, mtime, phash, status) VALUES (?, 1, 1, ?, 'pending')",
                           (str(path), h))
        return h

    monkeypatch.setattr(scan, "partial_hash", hash_and_race)
    plan = plan_scan(db, [a], [tmp_path], 4.0, "bb")
    assert len(plan.to_index) == 1
    assert db.conn.execute("SELECT COUNT(*) FROM videos").fetchone()[0] == 1
