from itertools import pairwise

import pytest

from engine.media.clips import clip_windows, frame_times


def test_short_video_is_one_clip():
    assert clip_windows(2.5, 4.0) == [(0.0, 2.5)]


def test_windows_cover_the_video_without_gaps():
    w = clip_windows(10.0, 4.0)
    assert w[0][0] == 0.0 and w[-1][1] == pytest.approx(10.0)
    assert all(b[0] <= a[1] for a, b in pairwise(w))
    assert all(e - s == pytest.approx(4.0) for s, e in w)


def test_short_tail_is_absorbed():
    w = clip_windows(8.5, 4.0)
    assert w == [(0.0, 4.0), (4.0, 8.5)]


def test_empty_duration():
    assert clip_windows(0.0) == []


def test_frame_times_are_slice_centres():
    assert frame_times((4.0, 8.0), 2) == [5.0, 7.0]
