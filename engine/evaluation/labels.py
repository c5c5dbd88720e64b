"""Which sounds should find which videos: fixed by meaning, before any run, never tuned.

Keys are sound labels (ESC-50 classes and the few other shared sound files of the same things);
values are the video labels whose pictures show that sound's source.
"""

from __future__ import annotations

AUDIO_TO_VIDEO: dict[str, set[str]] = {
    "dog": {"dog", "dog barking", "walking the dog"},
    "crying_baby": {"baby"},
    "coughing": {"cough"},
    "fireworks": {"fireworks"},
    "clapping": {"applauding"},
    "engine": {"car"},
}


def video_stratum(label: str) -> str:
    """The sound class a video label belongs to (so its videos split evenly), else the label."""
    for sound, video_labels in sorted(AUDIO_TO_VIDEO.items()):
        if label in video_labels:
            return f"sound:{sound}"
    return label
