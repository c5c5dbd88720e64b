"""Thumbnails at a moment, cached as JPEG files in the library's thumbs/ folder."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import cv2

from engine.errors import DiskFullError, MediaError
from engine.media.frames import read_frame_at


def thumbnail(path: Path, t: float, cache_dir: Path, width: int = 320) -> Path:
    st = path.stat()
    key = hashlib.sha1(f"{path}|{st.st_size}|{st.st_mtime_ns}|{t:.1f}|{width}".encode()).hexdigest()
    out = cache_dir / key[:2] / f"{key}.jpg"
    if out.exists():
        return out
    frame = read_frame_at(path, t)
    h, w = frame.shape[:2]
    frame = cv2.resize(frame, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.stem}.{os.getpid()}.tmp.jpg")  # unique: two processes may make the same one
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise MediaError(f"cannot encode a thumbnail of {path.name}")
    try:
        tmp.write_bytes(data.tobytes())  # unlike cv2.imwrite, a full disk raises here
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise DiskFullError("the disk holding the library is full (writing a thumbnail)") from exc
        raise MediaError(f"cannot write a thumbnail of {path.name}: {exc.strerror or exc}") from exc
    return out
