"""End to end: narrated test videos (espeak-ng voice muxed with PyAV) are transcribed into an
indexed library without re-embedding video, then found by a paraphrase or an exact word."""

from __future__ import annotations

import pytest

from engine.errors import Cancelled
from engine.jobs import CancelToken
from engine.speech.store import transcript_hits
from engine.speech.transcribe_library import pending_videos, transcribe_library
from tests.speech_fixtures import make_narrated_video, require_shared_media

pytestmark = pytest.mark.slow

NARRATIONS = {
    "budget.mp4": [1.0, "Good morning. Today I will explain how we plan the budget for next year.", 1.5,
                   "Spending on travel will go down, and salaries will grow a little.", 1.0],
    "cooking.mp4": [0.5, "Today we are cooking dinner. First we chop the onions and fry them in a pan.", 1.0],
    "weather.mp4": [0.5, "Tomorrow the weather will be sunny and warm, with some rain in the evening.", 1.0],
    "dog.mp4": [0.5, "My dog loves to chase the red ball in the park every morning.", 1.0],
}


@pytest.fixture(scope="module")
def embed():
    import torch

    from engine.models.text import TextBackbone

    return TextBackbone(torch.device("cpu")).features


@pytest.fixture(scope="module")
def narrated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("narrated")
    return {name: make_narrated_video(folder / name, parts) for name, parts in NARRATIONS.items()}


def register(lib, path, duration: float, has_audio: bool = True, clip_s: float = 4.0) -> int:
    """What the indexer leaves behind for a video indexed without transcription."""
    conn = lib.db.conn
    cur = conn.execute("INSERT INTO videos(path, size, mtime, phash, duration, status, has_audio, "
                       "transcribed) VALUES (?, 1, 0, ?, ?, 'done', ?, 0)",
                       (str(path), str(path), duration, int(has_audio)))
    video_id = int(cur.lastrowid)
    t, idx = 0.0, 0
    while t < duration:
        conn.execute("INSERT INTO clips(video_id, idx, start, end) VALUES (?, ?, ?, ?)",
                     (video_id, idx, t, min(duration, t + clip_s)))
        t, idx = t + clip_s, idx + 1
    return video_id


@pytest.fixture
def lib(tmp_path):
    from engine.api import Library

    library = Library(tmp_path / "lib")
    yield library
    library.close()


def duration_of(path) -> float:
    from engine.media.audio import load_audio

    return len(load_audio(path)) / 16000


def test_transcribe_library_then_search_by_paraphrase_and_exact_word(lib, narrated, embed):
    ids = {name: register(lib, path, duration_of(path)) for name, path in narrated.items()}
    progress = list(transcribe_library(lib, CancelToken(), embed=embed))
    assert progress[-1].fraction == pytest.approx(1.0)
    assert progress[-1].info["failed"] == []
    assert pending_videos(lib) == []
    assert all(v.transcribed for v in lib.videos())

    def top(text: str):
        hits = transcript_hits(lib.db.conn, text, embed([text])[0])
        assert hits, text
        return hits[0]

    by_id = {v: k for k, v in ids.items()}
    assert by_id[top("the part where she explains the money plan").video_id] == "budget.mp4"
    assert by_id[top("preparing a meal in the kitchen").video_id] == "cooking.mp4"
    assert by_id[top("the forecast").video_id] == "weather.mp4"
    assert by_id[top("a pet playing fetch").video_id] == "dog.mp4"
    onions = top("onions")
    assert by_id[onions.video_id] == "cooking.mp4" and "onions" in onions.snippet.lower()
    salaries = top("salaries")
    assert by_id[salaries.video_id] == "budget.mp4" and salaries.reason == "said"
    assert salaries.start >= 4.0  # the second sentence, after the first and a pause
    assert salaries.clip_id >= 0


def test_music_video_gets_a_sound_caption_and_no_speech(lib, embed):
    chaplin = require_shared_media("video/demos/moviepy__chaplin.mp4")
    video = register(lib, chaplin, duration_of(chaplin))
    list(transcribe_library(lib, CancelToken(), embed=embed))
    rows = lib.db.conn.execute("SELECT kind, text FROM transcripts WHERE video_id = ?", (video,)).fetchall()
    assert rows and all(kind == "heard" for kind, _ in rows), rows
    assert any("music" in text for _, text in rows)


def test_videos_without_sound_or_file_are_handled(lib, narrated, embed, tmp_path):
    silent = register(lib, tmp_path / "silent.mp4", 4.0, has_audio=False)
    gone = register(lib, tmp_path / "deleted.mp4", 4.0)
    progress = list(transcribe_library(lib, CancelToken(), embed=embed))
    assert progress[-1].info["failed"] == [str(tmp_path / "deleted.mp4")]
    state = {v.id: v.transcribed for v in lib.videos()}
    assert state[silent] is True and state[gone] is False  # the missing file is retried next time


def test_cancel_keeps_finished_videos(lib, narrated, embed):
    for path in narrated.values():
        register(lib, path, duration_of(path))
    token = CancelToken()
    jobs = transcribe_library(lib, token, embed=embed)
    next(jobs)  # the announcement
    next(jobs)  # the first video is written
    token.cancel()
    with pytest.raises(Cancelled):
        next(jobs)
    assert len(pending_videos(lib)) == len(narrated) - 1


def test_nothing_to_do_loads_no_model(lib):
    progress = list(transcribe_library(lib, CancelToken()))
    assert len(progress) == 1 and progress[0].total == 0
    assert not lib.models_loaded
