"""The overlapped indexing pipeline (decoding, the Whisper encoder, the CNN and the speech passes
in threads of their own, a file's audio handed on before its frames decode) must store what the
one-file-at-a-time path computes (``embed_file``, which distributed workers run)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.index.db import from_blob
from engine.index.indexer import embed_file, load_transcriber
from engine.jobs import CancelToken
from tests.speech_fixtures import make_narrated_video
from tests.synth import make_video

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    make_narrated_video(root / "a_budget.mp4", [0.5, "Spending on travel will go down next year.", 1.0])
    make_video(root / "b_silent.mp4", seconds=5.0, color=(240, 220, 10), shape="circle", audio=False)
    make_narrated_video(root / "c_dog.mp4", [0.5, "My dog loves to chase the red ball in the park.", 1.0],
                        color=(200, 30, 30))
    return root


def stored(conn, video_id: int) -> tuple[list[tuple], np.ndarray | None, np.ndarray]:
    segs = conn.execute("SELECT kind, round(start, 2), round(end, 2), text FROM transcripts WHERE video_id=? "
                        "ORDER BY kind DESC, start", (video_id,)).fetchall()
    rows = conn.execute("SELECT f.audio, f.video FROM clips c JOIN features f ON f.clip_id = c.id "
                        "WHERE c.video_id=? ORDER BY c.idx", (video_id,)).fetchall()
    audio = None if rows[0][0] is None else np.stack([from_blob(r[0], "float16") for r in rows]).astype(np.float32)
    video = np.stack([from_blob(r[1], "float16") for r in rows]).astype(np.float32)
    return [tuple(s) for s in segs], audio, video


def test_pipeline_stores_what_one_file_at_a_time_computes(tmp_path, folder):
    from engine.api import Library

    lib = Library(tmp_path / "lib", device="cpu")
    try:
        progress = list(lib.index([folder], transcribe=True))
        assert progress[-1].stage == "done" and progress[-1].info["files_done"] == 3
        model = lib.load_models()
        transcriber = load_transcriber(model)
        conn = lib.db.conn
        videos = conn.execute("SELECT id, path FROM videos ORDER BY path").fetchall()
        said = 0
        for video_id, path in videos:
            expected = embed_file(model, video_id, folder / path.split("/")[-1], lib.settings.clip_seconds,
                                  transcriber, CancelToken())
            segs, audio, video = stored(conn, video_id)
            want = sorted(((s.kind, round(s.start, 2), round(s.end, 2), s.text) for s in expected.segments),
                          key=lambda s: (s[0] != "said", s[1]))
            assert segs == want
            said += sum(s[0] == "said" for s in segs)
            np.testing.assert_allclose(video, expected.video_feats.reshape(len(video), -1), atol=2e-2)
            if expected.audio_feats is None:
                assert audio is None
            else:  # Whisper's int8 encoder differs by ~1e-2 with the thread it runs on
                np.testing.assert_allclose(audio, expected.audio_feats, atol=5e-2)
        assert said >= 2  # both narrations were heard
    finally:
        lib.close()
