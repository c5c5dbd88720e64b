"""Decoding: containers and codecs, frame sampling, audio, bad files."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from engine.errors import MediaError, NoVideoStreamError
from engine.index.decode import decode_video
from engine.media import audio as audio_mod
from engine.media import frames
from engine.media.audio import load_audio
from engine.media.frames import sample_frames
from engine.media.probe import probe
from tests.synth import make_video, write_wav


@pytest.mark.parametrize("name,codec", [("a.mp4", "libx264"), ("a.mkv", "libx264"), ("a.webm", "libvpx-vp9"),
                                        ("a.avi", "mpeg4"), ("a.mov", "libx264"), ("a_hevc.mp4", "libx265"),
                                        ("a_av1.mkv", "libsvtav1")])
def test_containers_and_codecs(tmp_path, name, codec):
    path = make_video(tmp_path / name, codec=codec, seconds=3.0, size=(160, 128))
    info = probe(path)
    assert info.duration == pytest.approx(3.0, abs=0.25)
    assert info.has_audio
    frames = sample_frames(path, [0.5, 1.5, 2.5], 64)
    assert frames.shape == (3, 64, 64, 3)
    # The red square on white: red dominates the centre, white the corners.
    assert frames[:, 32, 32, 0].mean() > 180 and frames[:, 32, 32, 2].mean() < 90


def test_audio_is_16k_mono_with_the_right_pitch(tmp_path):
    path = make_video(tmp_path / "tone.mp4", tone_hz=440.0, seconds=2.0)
    wave = load_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert len(wave) == pytest.approx(32000, rel=0.05)
    spectrum = np.abs(np.fft.rfft(wave[4000:20000]))
    assert np.fft.rfftfreq(16000, 1 / 16000)[spectrum.argmax()] == pytest.approx(440, abs=3)


def test_video_without_audio(tmp_path):
    path = make_video(tmp_path / "mute.mp4", audio=False, seconds=2.0)
    assert not probe(path).has_audio
    assert load_audio(path) is None
    decoded = decode_video(path, 4.0, 2, 64)
    assert decoded.audio is None and decoded.frames.shape == (1, 2, 64, 64, 3)


def test_times_past_the_end_reuse_the_last_frame(tmp_path):
    path = make_video(tmp_path / "v.mp4", seconds=1.0)
    frames = sample_frames(path, [0.5, 5.0, 9.0], 32)
    assert frames.shape == (3, 32, 32, 3) and frames[2].any()


def test_corrupt_and_missing_files_raise_media_errors(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    with pytest.raises(MediaError):
        decode_video(bad, 4.0, 2, 64)
    with pytest.raises(MediaError):
        probe(tmp_path / "nope.mp4")


def test_audio_only_file_is_not_a_video(tmp_path):
    wav = write_wav(tmp_path / "a.wav", np.zeros(16000, np.float32))
    with pytest.raises(NoVideoStreamError):
        probe(Path(wav))


def test_vertical_phone_video_keeps_its_orientation(shared_media):
    path = shared_media / "video/demos/videollava__sample_demo_22.mp4"
    info = probe(path)
    assert info.height > info.width


# Sampling fast path (reference frames only), readers' agreement, rotation, damaged files.

def _ramp(n: int, size: tuple[int, int] = (160, 120), step: int = 4) -> list[np.ndarray]:
    """Frame i is a flat grey of level step*i: a sampled frame's brightness tells which frame it was."""
    w, h = size
    return [np.full((h, w, 3), step * i, np.uint8) for i in range(n)]


def _frame_index(sampled: np.ndarray, step: int = 4) -> np.ndarray:
    return sampled.reshape(len(sampled), -1).mean(axis=1) / step


@pytest.mark.parametrize("name,codec,slack", [("r.mp4", "libx264", 0.6), ("r_hevc.mkv", "libx265", 0.6),
                                              ("r_av1.mkv", "libsvtav1", 1.6)])
def test_skipping_fast_path_keeps_the_nearest_frame(tmp_path, name, codec, slack):
    """H.264/HEVC decode every frame near a sampled time, so the nearest frame is among them. AV1
    skips everywhere: the nearest reference frame, at most one frame further."""
    fps, times = 20, [0.0, 0.3, 0.62, 1.0, 1.5, 2.45, 2.9, 7.0]
    path = make_video(tmp_path / name, codec=codec, frames=_ramp(60), fps=fps, audio=False)
    fast = frames._sample_skipping(path, times, 32)
    assert fast is not None  # B-frame codecs and AV1 take the fast path
    wanted = np.minimum(np.round(np.array(times) * fps), 59)  # past the end: the last frame
    assert np.abs(_frame_index(fast) - wanted).max() <= slack


def test_away_from_the_times_only_reference_frames_are_decoded(tmp_path):
    path = make_video(tmp_path / "b.mp4", frames=_ramp(60, step=4), fps=20, audio=False)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        decoded = frames._decode_near(container.demux(stream), stream, [1.0, 2.5], reach=0.075)
        shown = [round(float(f.time) * 20) for f in decoded]
    assert {19, 20, 21, 49, 50, 51} <= set(shown)  # within 1.5 frames of each time: every frame
    assert len(shown) < 45  # elsewhere the B-frames were skipped


@pytest.mark.parametrize("name,codec", [("r.avi", "mpeg4"), ("r.webm", "libvpx-vp9")])
def test_other_codecs_keep_the_opencv_reader(tmp_path, name, codec):
    path = make_video(tmp_path / name, codec=codec, frames=_ramp(30), fps=10, audio=False)
    assert frames._sample_skipping(path, [0.5], 32) is None
    assert np.abs(_frame_index(sample_frames(path, [0.5, 1.2, 2.0], 32)) - [5, 12, 20]).max() <= 0.6


@pytest.mark.parametrize("name,codec", [("u.mp4", "libx264"), ("u.avi", "mpeg4")])
def test_times_out_of_order_get_their_own_frames(tmp_path, name, codec):
    # A video's last clip is stretched back over the one before: its first time comes earlier.
    path = make_video(tmp_path / name, codec=codec, frames=_ramp(40), fps=10, audio=False)
    times = [1.0, 3.0, 2.1, 3.6]
    sampled = sample_frames(path, times, 32)
    np.testing.assert_array_equal(sampled, np.stack([sample_frames(path, [t], 32)[0] for t in times]))
    assert np.abs(_frame_index(sampled) - [10, 30, 21, 36]).max() <= 1.0  # MPEG-4 greys are coarse


def _write_vfr(path: Path, times_ms: list[int], step: int) -> Path:
    with av.open(str(path), mode="w") as container:
        vs = container.add_stream("libx264", rate=20)
        vs.width, vs.height, vs.pix_fmt = 160, 120, "yuv420p"
        vs.codec_context.time_base = Fraction(1, 1000)
        for i, ms in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), step * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            for packet in vs.encode(frame):
                container.mux(packet)
        for packet in vs.encode():
            container.mux(packet)
    return path


def test_variable_frame_rate_follows_each_frames_own_timestamp(tmp_path):
    # 20 frames 50 ms apart, then 20 frames 250 ms apart: counting frames at any one rate is wrong.
    times_ms = [50 * i for i in range(20)] + [1000 + 250 * i for i in range(20)]
    path = _write_vfr(tmp_path / "vfr.mp4", times_ms, step=6)
    times = [0.52, 2.0, 3.1, 5.0]
    wanted = [int(np.argmin(np.abs(np.array(times_ms) / 1000 - t))) for t in times]  # 10, 24, 28, 36
    for sampled in (sample_frames(path, times, 32), frames._sample_opencv(path, times, 32),
                    frames._sample_pyav(path, times, 32)):
        assert np.abs(_frame_index(sampled, step=6) - wanted).max() <= 1.1


@pytest.mark.parametrize("reader", ["sample_frames", "_sample_skipping", "_sample_opencv", "_sample_pyav"])
def test_rotated_phone_video_is_sampled_upright(tmp_path, reader):
    img = np.zeros((120, 160, 3), np.uint8)  # RGB quadrants: red, green / blue, white
    img[:60, :80], img[:60, 80:], img[60:, :80], img[60:, 80:] = (255, 0, 0), (0, 255, 0), (0, 0, 255), 255
    path = make_video(tmp_path / "phone.mp4", frames=[img] * 20, rotate=90, audio=False)
    out = getattr(frames, reader)(path, [0.5, 1.5], 64)
    upright = frames.prepare(np.ascontiguousarray(np.rot90(img[..., ::-1], k=-1)), 64)  # clockwise
    assert out.shape == (2, 64, 64, 3)
    assert np.abs(out.astype(int) - upright).mean() < 8


@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_probe_reports_the_display_rotation_and_upright_size(tmp_path, rotate):
    from engine.media.probe import probe

    info = probe(make_video(tmp_path / "phone.mp4", size=(160, 120), seconds=1.0, rotate=rotate, audio=False))
    assert info.rotation == rotate  # clockwise, as the legacy 'rotate' tag says it
    assert (info.width, info.height) == ((120, 160) if rotate in (90, 270) else (160, 120))


def test_damaged_tail_keeps_the_frames_before_it(tmp_path):
    path = make_video(tmp_path / "cut.mkv", frames=_ramp(60), fps=20, audio=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    sampled = sample_frames(path, [0.5, 1.0, 2.9], 32)
    got = _frame_index(sampled)
    assert abs(got[0] - 10) <= 1.6 and abs(got[1] - 20) <= 1.6
    assert 20 < got[2] < 59  # past the damage: the last frame that decoded


def test_unreadable_video_names_the_file(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    with pytest.raises(MediaError, match=r"broken\.mp4"):
        sample_frames(bad, [0.5], 32)


# Audio: any sample format, channels averaged, resampled in blocks without seams.

def _write_stereo_wav(path: Path, left: np.ndarray, right: np.ndarray, rate: int) -> Path:
    from tests.synth import write_wav

    return write_wav(path, np.stack([left, right], axis=1), rate)


def test_stereo_pcm_is_averaged_to_mono_at_16k(tmp_path):
    rate, seconds = 44100, 2.0
    t = np.arange(int(rate * seconds)) / rate
    tone = (0.6 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    wave_ = load_audio(_write_stereo_wav(tmp_path / "s.wav", tone, np.zeros_like(tone), rate))
    assert wave_.dtype == np.float32 and len(wave_) == pytest.approx(32000, abs=2)
    assert np.abs(wave_[1000:-1000]).max() == pytest.approx(0.3, abs=0.01)  # averaged, not summed
    spectrum = np.abs(np.fft.rfft(wave_[4000:20000]))
    assert np.fft.rfftfreq(16000, 1 / 16000)[spectrum.argmax()] == pytest.approx(440, abs=3)


def test_blocks_join_without_seams(tmp_path, monkeypatch):
    path = make_video(tmp_path / "long.mp4", tone_hz=440.0, seconds=4.0)
    whole = load_audio(path)
    monkeypatch.setattr(audio_mod, "BLOCK_SECONDS", 0.3)  # many blocks, each of a few codec frames
    pieces = load_audio(path)
    assert len(pieces) == len(whole)
    np.testing.assert_allclose(pieces, whole, atol=1e-5)


def test_max_seconds_cuts_the_audio(tmp_path):
    path = make_video(tmp_path / "tone.mp4", tone_hz=440.0, seconds=3.0)
    assert len(load_audio(path, max_seconds=1.0)) == 16000


@pytest.mark.parametrize("reader", ["sample_frames", "_sample_skipping", "_sample_opencv", "_sample_pyav"])
def test_a_cancelled_job_stops_reading_frames(tmp_path, reader):
    from engine.errors import Cancelled
    from engine.jobs import CancelToken

    path = make_video(tmp_path / "long.mp4", frames=_ramp(200, step=1), fps=20, audio=False)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        getattr(frames, reader)(path, [1.0, 5.0, 9.0], 32, token)


def test_a_cancelled_job_stops_reading_audio(tmp_path):
    from engine.errors import Cancelled
    from engine.jobs import CancelToken, checked

    path = make_video(tmp_path / "tone.mp4", seconds=3.0)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        load_audio(path, token=token)
    with pytest.raises(Cancelled):
        decode_video(path, 4.0, 2, 64, token=token)
    assert list(checked(range(3), CancelToken())) == [0, 1, 2]
