"""A stand-in for engine.api.Library with the same surface (engine.contract.LibraryContract, checked
by tests/gui/test_contract.py), fast and deterministic. It reports only figures the real engine
reports too (training: the loss per step, then the self-retrieval metrics under "metrics").

It "indexes" any file whose name ends in a video extension (one clip per 2 s of a fake 6 s
duration, files named ``bad*`` fail), and text search ranks videos whose file name contains a
query word first. Thumbnails are flat colour JPEGs written with Qt.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtGui import QColor, QImage

from engine.contract import FolderSummary, VideoRow
from engine.errors import LibraryError, MediaError, QueryError
from engine.jobs import CancelToken, Progress
from engine.library import VIDEO_EXTENSIONS, LibraryPaths, Settings
from engine.search.moments import Moment, SearchResult


@dataclass
class FakeModel:
    model_id: str = "fake-model"
    device_note: str = "cpu (fake)"


@dataclass
class _Video:
    id: int
    path: str
    status: str = "pending"
    error: str | None = None
    duration: float = 6.0
    clips: list[tuple[int, float, float]] = field(default_factory=list)


class FakeLibrary:
    def __init__(self, root: Path, load_delay: float = 0.05, file_delay: float = 0.01) -> None:
        self.paths = LibraryPaths(Path(root)).ensure()
        self.settings = Settings.load(self.paths.settings)
        self.load_delay = load_delay
        self.file_delay = file_delay
        self._active_model_id = "mmv-base-v1"
        self.models = [{"id": "mmv-base-v1", "name": "base"}]
        self.train_requests: list[dict] = []
        self._model: FakeModel | None = None
        self._lock = threading.Lock()
        self._writer = threading.Lock()
        self._roots: list[str] = []
        self._videos: dict[str, _Video] = {}
        self._next_clip = 1
        self.calls: list[tuple] = []
        self.closed = False

    # models
    @property
    def active_model_id(self) -> str:
        return self._active_model_id

    def load_models(self) -> FakeModel:
        with self._lock:
            if self._model is None:
                time.sleep(self.load_delay)
                self._model = FakeModel(self.active_model_id)
            return self._model

    @property
    def models_loaded(self) -> bool:
        return self._model is not None

    # indexing
    def index(self, paths, token: CancelToken | None = None, transcribe=None, read_text=None, retry_errors=False,
              ray=None):
        token = token or CancelToken()
        if not self._writer.acquire(blocking=False):
            raise LibraryError("another job is already writing to this library")
        try:
            files: list[Path] = []
            for p in map(Path, paths):
                p = p.resolve()
                if str(p) not in self._roots:
                    self._roots.append(str(p))
                if p.is_dir():
                    files += sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_EXTENSIONS)
                elif p.suffix.lower() in VIDEO_EXTENSIONS:
                    files.append(p)
            todo = [f for f in files if self._videos.get(str(f), _Video(0, "")).status != "done"]
            clips = 0
            yield Progress("scan", 0, len(todo), "files", f"{len(todo)} new files",
                           info={"files_done": 0, "files_total": len(todo), "clips": 0})
            self.load_models()
            t0 = time.monotonic()
            for i, f in enumerate(todo):
                token.raise_if_cancelled()
                v = self._videos.setdefault(str(f), _Video(len(self._videos) + 1, str(f)))
                time.sleep(self.file_delay)
                if f.name.startswith("bad"):
                    v.status, v.error = "error", str(MediaError(f"cannot decode {f.name}: no video stream"))
                else:
                    v.clips = []
                    for k in range(3):
                        v.clips.append((self._next_clip, 2.0 * k, 2.0 * k + 2.0))
                        self._next_clip += 1
                    v.status, v.error = "done", None
                    clips += 3
                done = i + 1
                spent = time.monotonic() - t0
                yield Progress("index", done, len(todo), "files", f.name,
                               eta_s=spent / done * (len(todo) - done),
                               info={"files_done": done, "files_total": len(todo), "clips": clips,
                                     "video_seconds": 6.0 * done})
        finally:
            self._writer.release()

    def reset_errors(self, folder=None) -> int:
        pre = None if folder is None else str(Path(folder).resolve()).rstrip("/") + "/"
        failed = [v for k, v in self._videos.items() if v.status == "error" and (pre is None or k.startswith(pre))]
        for v in failed:
            v.status, v.error = "pending", None
        return len(failed)

    def remove(self, path) -> int:
        p = str(Path(path).resolve())
        gone = [k for k in self._videos if k == p or k.startswith(p.rstrip("/") + "/")]
        for k in gone:
            del self._videos[k]
        self._roots = [r for r in self._roots if r != p]
        return len(gone)

    # search
    def _moments(self, score_of, kind: str, transcript: str | None = None) -> SearchResult:
        self.load_models()
        ms = []
        for v in self._videos.values():
            if v.status != "done":
                continue
            s = score_of(v)
            if s <= 0:
                continue
            cid, a, b = v.clips[1]
            ms.append(Moment(v.id, v.path, a, b, s, [cid], cid, a, ["seen"] if kind != "audio" else ["heard"],
                             None))
        ms.sort(key=lambda m: -m.score)
        return SearchResult(ms, kind, transcript, 0.01, self.active_model_id)

    def search_text(self, text: str, top_k: int = 20) -> SearchResult:
        self.calls.append(("text", text))
        if not text.strip():
            raise QueryError("empty query")
        words = text.lower().split()

        def score(v: _Video) -> float:
            name = Path(v.path).stem.lower()
            return 0.9 if any(w in name for w in words) else 0.2
        res = self._moments(score, "text")
        if res.moments and any(w in Path(res.moments[0].path).stem.lower() for w in words):
            res.moments[0].reasons = ["seen", "said"]
            res.moments[0].snippet = f"… {words[0]} …"
        return res

    def search_audio(self, audio, top_k: int = 20, sample_rate: int = 16000) -> SearchResult:
        self.calls.append(("audio", audio if isinstance(audio, str | Path) else np.asarray(audio).shape))
        self.last_audio = None if isinstance(audio, str | Path) else np.asarray(audio)
        transcript = None if isinstance(audio, str | Path) else "a dog barking"
        kind = "audio" if transcript is None else "mic"
        return self._moments(lambda v: 0.8 if "dog" in v.path else 0.1, kind, transcript)

    def search_image(self, image, top_k: int = 20) -> SearchResult:
        self.calls.append(("image", image))
        return self._moments(lambda v: 0.7 if "red" in v.path else 0.1, "image")

    def search_like(self, clip_id: int, top_k: int = 20) -> SearchResult:
        self.calls.append(("like", clip_id))
        return self._moments(lambda v: 0.5, "like")

    # inspection
    def videos(self, folder=None) -> list[VideoRow]:
        rows = [VideoRow(v.id, v.path, v.status, v.error, v.duration if v.status == "done" else None,
                         len(v.clips), True, False) for v in self._videos.values()]
        if folder is not None:
            pre = str(Path(folder).resolve()).rstrip("/") + "/"
            rows = [r for r in rows if r.path.startswith(pre)]
        return sorted(rows, key=lambda r: r.path)

    def folders(self) -> list[FolderSummary]:
        out = []
        for root in sorted(self._roots):
            rows = self.videos(root) if Path(root).is_dir() else [r for r in self.videos() if r.path == root]
            cnt = lambda s, rows=rows: sum(1 for r in rows if r.status == s)
            out.append(FolderSummary(root, len(rows), cnt("done"), cnt("error"), cnt("pending"),
                                     cnt("missing"), sum(r.duration or 0 for r in rows)))
        return out

    def thumbnail(self, path, t: float, width: int = 320) -> Path:
        out = self.paths.thumbs_dir / f"{Path(path).stem}_{t:.1f}.jpg"
        if not out.exists():
            img = QImage(width, width * 9 // 16, QImage.Format.Format_RGB32)
            name = Path(path).stem
            img.fill(QColor("red" if "red" in name else "#3182ce" if "blue" in name else "#718096"))
            img.save(str(out), "JPG")
        return out

    def topics(self, k=None):
        raise LibraryError("the fake library has no vectors to group into topics")

    # training and models: the same Progress the engine's trainer yields (engine.train.run/publish)
    def train(self, token: CancelToken | None = None, **options):
        token = token or CancelToken()
        self.train_requests.append({"minutes": options.get("minutes", 5.0), "device": options.get("device", "auto"),
                                    "deep": options.get("deep", False)})
        steps = 20
        held = {"judged": True, "videos": [3, 7, 9], "clips": 12, "note": "3 of 14 videos held out"}
        yield Progress("prepare", message=held["note"], info={"held_out": held})
        for s in range(1, steps + 1):
            token.raise_if_cancelled()
            time.sleep(0.005)
            info = {"loss": 2.0 / s + 0.1, "epoch": 1 + s // 10, "clips_per_s": 1000.0, "elapsed_s": 0.005 * s}
            if s % 5 == 0:  # the real engine: the held-out loss at the end of each epoch
                info["val_loss"] = 2.5 / s + 0.3
            yield Progress("train", s, steps, "steps", eta_s=(steps - s) * 0.005, info=info,
                           message=f"epoch {info['epoch']}: loss {info['loss']:.3f}")
        new = f"ft-{len(self.models)}"
        est = {"low": 0.2, "high": 0.9, "random": 0.33, "n_queries": 12}
        held.update(before={"sound_to_picture": {"R@1": {**est, "value": 0.41}}},
                    after={"sound_to_picture": {"R@1": {**est, "value": 0.55}}})
        metrics = {"held_out": held}
        self.models.append({"id": new, "name": "fine-tuned", "info": {"metrics": metrics}})
        self._active_model_id = new
        yield Progress("done", 1, 1, message=f"now using {new}",
                       info={"model_id": new, "parent": "mmv-base-v1", "metrics": metrics, "train_seconds": 0.1})

    def list_models(self):
        return list(self.models)

    def use_model(self, model_id: str) -> None:
        self._active_model_id = model_id

    def save_settings(self) -> None:
        self.settings.save(self.paths.settings)

    def close(self) -> None:
        self.closed = True


# Every library trains (engine.contract); the old name stays for the tests that use it.
FakeTrainableLibrary = FakeLibrary


class FakeRecorder:
    """Same surface as engine.speech.recorder.Recorder: start/stop/level/elapsed."""

    instances: list[FakeRecorder] = []  # noqa: RUF012

    def __init__(self, device=None, sample_rate: int = 16000, max_seconds: float = 30.0) -> None:
        self.sample_rate = sample_rate
        self.level = 0.0
        self.elapsed = 0.0
        self.started = self.stopped = False
        FakeRecorder.instances.append(self)

    def start(self) -> None:
        self.started = True
        self.level = 0.6
        self.elapsed = 0.5

    def stop(self) -> np.ndarray:
        self.stopped = True
        t = np.arange(int(self.sample_rate * 1.5)) / self.sample_rate
        return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
