"""Bad files: each kind is refused by the media layer with a clear reason (fast), and while
indexing a folder of them every one is recorded with its reason and the good video is indexed
(slow: real models)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from engine.errors import MediaError
from engine.index.decode import decode_video
from engine.media import probe as probe_mod
from tests.badfiles import good_video, make_bad_files, make_odd_entries

REASONS = {
    "zero-byte": "cannot read",
    "truncated": "",             # whatever FFmpeg says; the point is: recorded, not a crash
    "random bytes": "cannot read",
    "image named .mp4": "is an image",
    "text named .mp4": "cannot read",
    "audio only": "no video stream",
    "no video frames": "no",     # no decodable frames / no video
}


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    good = good_video(root / "good" / "good.mp4")
    return good, make_bad_files(root / "bad", good)


@pytest.mark.parametrize("kind", list(REASONS))
def test_each_bad_kind_is_a_media_error_with_a_reason(bad, kind):
    _, files = bad
    t0 = time.monotonic()
    with pytest.raises(MediaError) as err:
        decode_video(files[kind], 4.0, 2, 64)
    assert files[kind].exists() and REASONS[kind] in str(err.value) and files[kind].name in str(err.value)
    assert time.monotonic() - t0 < 30


def test_absurd_duration_is_not_believed(bad):
    """Hours claimed by a 20 kB file: the real length is measured instead of allocating days of clips."""
    files = bad[1]
    decoded = decode_video(files["absurd duration in header"], 4.0, 2, 64)
    assert decoded.info["duration"] < 10 and len(decoded.windows) <= 3


def test_absurd_picture_size_is_refused(tmp_path):
    with pytest.raises(MediaError, match="absurd picture size"):
        probe_mod._check_sane(tmp_path / "x.mp4", "mov,mp4,m4a,3gp,3g2,mj2", 100_000, 100_000)
    probe_mod._check_sane(tmp_path / "x.mp4", "mov,mp4,m4a,3gp,3g2,mj2", 1920, 1080)


def test_decoding_is_time_bounded(bad, monkeypatch):
    from engine.media import deadline

    monkeypatch.setattr(deadline, "BASE_SECONDS", -1.0)  # every file is already over its budget
    monkeypatch.setattr(deadline, "PER_VIDEO_SECOND", 0.0)
    with pytest.raises(deadline.DecodeTimeout, match="took longer"):
        decode_video(bad[0], 4.0, 2, 64)


@pytest.mark.slow
def test_indexing_a_folder_of_bad_files_records_each_and_goes_on(tmp_path, bad, model):
    from engine.api import Library

    good, files = bad
    folder = tmp_path / "videos"
    folder.mkdir()
    for path in [good, *files.values()]:
        (folder / path.name).write_bytes(path.read_bytes())
    make_odd_entries(folder)
    unreadable = folder / "unreadable.mp4"
    unreadable.write_bytes(good.read_bytes())
    unreadable.chmod(0)
    lib = Library(tmp_path / "lib", device="cpu")
    lib.ctx.adopt_model(model)
    try:
        last = list(lib.index([folder], transcribe=False))[-1]
        rows = {os.path.basename(v.path): v for v in lib.videos()}
        assert rows["good.mp4"].status == "done"
        assert rows["absurd_duration.mp4"].status == "done"
        for kind, path in files.items():
            if kind != "absurd duration in header":
                assert rows[path.name].status == "error" and rows[path.name].error, kind
        problems = "\n".join(last.info["problems"])
        for needle in ("FIFO", "broken symbolic link", "symbolic link loop", "not valid UTF-8"):
            assert needle in problems
        if os.geteuid() != 0:  # root reads a chmod 000 file anyway
            assert "unreadable.mp4" in problems
        again = list(lib.index([folder], transcribe=False))[-1]
        assert again.info.get("files_done", 0) == 0            # recorded failures are not retried...
        retried = list(lib.index([folder], transcribe=False, retry_errors=True))[-1]
        assert retried.info["files_done"] == len(files) - 1    # ...until asked
    finally:
        unreadable.chmod(0o600)
        lib.close()


def test_thumbnail_write_failure_is_reported_not_ignored(tmp_path, bad, monkeypatch):
    from engine.errors import DiskFullError
    from engine.media.thumbnails import thumbnail

    good = bad[0]
    out = thumbnail(good, 1.0, tmp_path / "thumbs")
    assert out.exists() and out.stat().st_size > 0
    real_write = Path.write_bytes

    def full(self, data):
        if self.suffix == ".jpg":
            raise OSError(28, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(DiskFullError):
        thumbnail(good, 2.0, tmp_path / "thumbs")
    assert not list((tmp_path / "thumbs").rglob("*.tmp.jpg"))
