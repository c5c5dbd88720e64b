"""Decoding: containers and codecs, frame sampling, audio, bad files."""

from pathlib import Path

import numpy as np
import pytest

from engine.errors import MediaError, NoVideoStreamError
from engine.index.decode import decode_video
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
