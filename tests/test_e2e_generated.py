"""End to end on generated videos of known content: index, then search by sound, image, clip."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import QueryError
from tests.conftest import GENERATED
from tests.synth import SAMPLE_RATE, make_audio, write_wav

pytestmark = pytest.mark.slow


def _names(result):
    return [m.path.rsplit("/", 1)[-1] for m in result.moments]


def test_everything_indexed_with_clips_and_vectors(generated_library):
    videos = {v.path.rsplit("/", 1)[-1]: v for v in generated_library.videos()}
    assert set(videos) == set(GENERATED)
    assert all(v.status == "done" and v.n_clips == 3 for v in videos.values())
    assert not videos["silent_yellow.mp4"].has_audio and videos["red_square_tone.mp4"].has_audio
    conn = generated_library.db.conn
    model_id = generated_library.active_model_id
    n_clips = conn.execute("SELECT COUNT(*) FROM clips").fetchone()[0]
    counts = dict(conn.execute("SELECT space || '/' || modality, COUNT(*) FROM embeddings WHERE model_id=? "
                               "GROUP BY space, modality", (model_id,)))
    assert counts["va/video"] == counts["vat/video"] == n_clips == 12
    assert counts["va/audio"] == 9  # the silent video has no audio vectors
    vec = np.frombuffer(conn.execute("SELECT vec FROM embeddings LIMIT 1").fetchone()[0], np.float32)
    assert abs(np.linalg.norm(vec) - 1) < 1e-4


@pytest.mark.parametrize("sound,expected", [({"tone_hz": 440.0}, "red_square_tone.mp4"),
                                            ({"noise": True}, "blue_circle_noise.mkv"),
                                            ({"tone_hz": 150.0}, "green_stripes_low.webm")])
def test_sound_finds_the_video_that_sounds_like_it(generated_library, tmp_path, sound, expected):
    wav = write_wav(tmp_path / "q.wav", make_audio(3.0, **{"tone_hz": None, **sound}, seed=7))
    result = generated_library.search_audio(wav, top_k=5)
    assert _names(result)[0] == expected
    assert "heard" in result.moments[0].reasons


def test_microphone_style_array_query(generated_library):
    wave = make_audio(2.0, tone_hz=440.0)
    result = generated_library.search_audio(np.concatenate([wave, wave]), top_k=3, sample_rate=SAMPLE_RATE)
    assert _names(result)[0] == "red_square_tone.mp4"


def test_image_finds_the_video_that_looks_like_it(generated_library, tmp_path):
    import cv2

    from tests.synth import _frame

    img = _frame((200, 150), (20, 200, 40), "stripes", 0.3, (255, 255, 255))
    path = tmp_path / "q.png"
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    result = generated_library.search_image(path, top_k=4)
    assert _names(result)[0] == "green_stripes_low.webm"
    assert result.moments[0].reasons == ["seen"]


def test_more_like_this(generated_library):
    conn = generated_library.db.conn
    clip_id = conn.execute("SELECT c.id FROM clips c JOIN videos v ON v.id=c.video_id "
                           "WHERE v.path LIKE '%green_stripes_low.webm' AND c.idx=0").fetchone()[0]
    result = generated_library.search_like(clip_id, top_k=5)
    assert _names(result)[0] == "green_stripes_low.webm"  # another clip of the same video comes first
    assert all(clip_id not in m.clip_ids and m.best_clip_id != clip_id for m in result.moments)


def test_text_query_returns_timestamped_moments(generated_library):
    result = generated_library.search_text("a red square", top_k=10)
    assert result.moments and all(0 <= m.start < m.end <= 10.1 for m in result.moments)
    assert result.model_id == generated_library.active_model_id


def test_bad_queries_are_clear_errors(generated_library, tmp_path):
    with pytest.raises(QueryError):
        generated_library.search_text("   ")
    with pytest.raises(QueryError):
        generated_library.search_audio(tmp_path / "missing.wav")
    with pytest.raises(QueryError):
        generated_library.search_like(10**9)
    bad = tmp_path / "not_an_image.png"
    bad.write_text("nope")
    with pytest.raises(QueryError):
        generated_library.search_image(bad)


def test_model_outputs_are_normalised_in_both_spaces(model):
    frames = np.random.default_rng(0).integers(0, 255, (3, model.config.frames_per_clip, 224, 224, 3), np.uint8)
    out = model.encode_video(frames)
    assert out["va"].shape == (3, model.config.va_dim) and out["vat"].shape == (3, model.config.vat_dim)
    audio = model.encode_audio(make_audio(2.0))
    text = model.encode_text(["a dog", "fireworks at night"])
    for arr in (out["va"], out["vat"], audio["va"], audio["vat"], text):
        assert np.allclose(np.linalg.norm(arr, axis=1), 1.0, atol=1e-4)
