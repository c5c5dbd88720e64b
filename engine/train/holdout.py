"""Held-out videos: the part of a library a run never trains on, so that its validation loss and
its before/after figures measure what the model learned rather than what it memorised.

The split is by video (clips of one video are near copies of each other), deterministic (a hash
of the video id, so a resumed run and a later report see the same split) and among the videos
that have sound (the figures need a sound to query with). A library with too few such videos
gets no split: training then uses everything and the run says plainly that nothing was judged.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from engine.train.data import TrainingData

HOLDOUT_FRACTION = 0.2
MIN_HELD_VIDEOS = 3
MIN_HELD_CLIPS = 8  # clips with sound among the held-out videos


@dataclass
class Holdout:
    train: TrainingData
    held: TrainingData | None   # None: the library is too small to judge
    train_rows: np.ndarray      # rows of the full data trained on
    held_rows: np.ndarray       # rows of the full data that are held out
    video_ids: list[int]        # the held-out videos
    note: str                   # one plain sentence for the user

    @property
    def judged(self) -> bool:
        return self.held is not None

    def summary(self) -> dict:
        return {"judged": self.judged, "videos": self.video_ids, "note": self.note,
                "clips": 0 if self.held is None else len(self.held)}


def _video_order(video_ids: list[int]) -> list[int]:
    """Videos in a fixed pseudo-random order (the same in every process, unlike ``hash``)."""
    return sorted(video_ids, key=lambda v: hashlib.sha1(f"video:{v}".encode()).hexdigest())


def split_holdout(data: TrainingData, fraction: float = HOLDOUT_FRACTION, min_videos: int = MIN_HELD_VIDEOS,
                  min_clips: int = MIN_HELD_CLIPS) -> Holdout:
    """Hold out ``fraction`` of the videos with sound (at least ``min_videos``), or nothing when
    that would leave fewer than ``min_clips`` clips with sound to judge by, or would take more
    than ``fraction`` of the library."""
    videos = data.keys[:, 0].numpy()
    with_sound = sorted({int(v) for v in videos[data.has_audio.numpy()]})
    n_held = max(min_videos, round(fraction * len(with_sound)))
    needed = math.ceil(min_videos / fraction)
    everything = np.arange(len(data))
    if len(with_sound) < needed:
        return Holdout(data, None, everything, everything[:0], [], (
            f"too small to judge: {len(with_sound)} videos with sound, and {needed} are needed to hold "
            f"{min_videos} out; trained on everything, so no before/after figure is shown"))
    held_ids = sorted(_video_order(with_sound)[:n_held])
    held = np.isin(videos, held_ids)
    n_clips = int((held & data.has_audio.numpy()).sum())
    if n_clips < min_clips:
        return Holdout(data, None, everything, everything[:0], [], (
            f"too small to judge: the {n_held} held-out videos have {n_clips} clips with sound "
            f"(at least {min_clips} needed); trained on everything, so no before/after figure is shown"))
    note = (f"{n_held} of {len(with_sound)} videos with sound ({n_clips} clips) held out: "
            "never trained on, used for the validation loss and the before/after figures")
    train_rows, held_rows = np.flatnonzero(~held), np.flatnonzero(held)
    return Holdout(data.subset(train_rows), data.subset(held_rows), train_rows, held_rows, held_ids, note)


def no_holdout(data: TrainingData) -> Holdout:
    """Training on everything by request (``holdout=0``): nothing is judged."""
    rows = np.arange(len(data))
    return Holdout(data, None, rows, rows[:0], [], "no videos held out (holdout=0): nothing was judged")
