"""Distributed indexing on Ray: workers decode and embed, the driver alone writes the library.

Why this shape: the library stays one SQLite database plus HNSW files that the desktop app opens
as usual, so the *writes* must stay with one process (the driver), one transaction per video as
in local indexing. What costs time (decoding, the CNN, Whisper) is spread over Ray actors, each
holding the same model as a local run (same config, same heads checkpoint, shipped as bytes so a
worker needs no access to the library, only to the video files: a shared mount at the same path).

Guarantees, as for a local run:
- a worker that dies mid-task is restarted and its batch retried (Ray actor restarts + task retries);
- a killed driver leaves every video either done or pending (the per-video transaction), and the
  next run, local or distributed, resumes the pending ones;
- cancel stops the cluster's work (outstanding tasks cancelled, actors killed) and the videos not
  yet written stay pending.

Ray is an optional extra (``pip install 'mmvsearch[cluster]'``); nothing imports it otherwise.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import ClusterError, MediaError
from engine.jobs import CancelToken, Progress

log = logging.getLogger(__name__)
WAIT_S = 0.5   # how often the driver looks at the cancel token while tasks run


@dataclass(frozen=True)
class RayOptions:
    """How to spread the work. ``address`` is a Ray address ("ray://host:10001", "host:6379",
    "auto") or "local" to start a runtime on this machine with ``workers`` workers."""

    address: str = "local"
    workers: int = 2
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    batch: int = 1            # files per task: larger batches amortise scheduling on many short files
    max_retries: int = 2      # restarts of a dead worker, and retries of its batch


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs to build exactly the driver's active model."""

    model_name: str
    model_id: str
    device: str
    checkpoint: bytes | None      # the active fine-tuned checkpoint's file, None for the base model
    clip_seconds: float
    transcribe: bool
    threads: int


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise ClusterError("distributed indexing needs Ray: pip install 'mmvsearch[cluster]'") from exc
    return ray


def connect(options: RayOptions):
    """Start or join the Ray runtime; returns the ray module."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "configure_logging": False}
    try:
        if options.address == "local":
            cpus = max(1, round(options.workers * options.cpus_per_worker))
            ray.init(num_cpus=cpus, num_gpus=int(options.workers * options.gpus_per_worker + 0.999),
                     _node_ip_address="127.0.0.1", **kwargs)
        else:
            ray.init(address=options.address, **kwargs)
    except Exception as exc:  # ConnectionError, RuntimeError, ValueError: all mean "no cluster"
        raise ClusterError(f"cannot reach the Ray cluster at {options.address}: {exc}") from exc
    return ray


class EmbedWorker:
    """One Ray actor: loads the model once, then embeds batches of files (never writes anything)."""

    def __init__(self, spec: WorkerSpec) -> None:
        import torch

        from engine.context import load_checkpoint_or_base
        from engine.index.indexer import load_transcriber
        from engine.models.registry import create_model

        torch.set_num_threads(max(1, spec.threads))
        model = create_model(spec.model_name, spec.device)
        if spec.checkpoint is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "heads.pt"
                path.write_bytes(spec.checkpoint)
                load_checkpoint_or_base(model, path, spec.model_id)
        model.load_all()
        self.model, self.spec = model, spec
        self.transcriber = load_transcriber(model) if spec.transcribe else None

    def model_id(self) -> str:
        """The model this worker embeds with: the base when the checkpoint did not fit."""
        return self.model.model_id

    def embed(self, items: list[tuple[int, str]]) -> list[tuple[int, BaseException | None, Any]]:
        """(video_id, None, (result, transcript vectors)) or (video_id, error, None) per file."""
        from engine.index.indexer import embed_file

        out = []
        for video_id, path in items:
            try:
                result = embed_file(self.model, video_id, Path(path), self.spec.clip_seconds,
                                    self.transcriber, CancelToken())
                out.append((video_id, None, (result, _segment_vectors(self.model, result))))
            except Exception as exc:  # reported per file (the driver classifies it); the batch goes on
                log.warning("embedding %s failed", path, exc_info=True)
                out.append((video_id, portable_error(exc), None))
        return out


def portable_error(exc: BaseException) -> BaseException:
    """An exception that crosses processes intact and keeps what the driver's classification
    (engine.index.failures) looks at: the media-error type, out of memory, the errno."""
    if isinstance(exc, MediaError):
        return MediaError(str(exc))
    if isinstance(exc, MemoryError):
        return MemoryError(str(exc))
    if isinstance(exc, OSError):
        return OSError(exc.errno, exc.strerror or str(exc))
    return RuntimeError(f"{type(exc).__name__}: {exc}")


def _segment_vectors(model, result):
    """Transcript vectors are computed where the text tower already is (the worker), so the
    driver never loads a model."""
    if not result.segments:
        return None
    return model.text_features([s.text for s in result.segments])


def worker_spec(lib, transcribe: bool, options: RayOptions) -> WorkerSpec:
    """The active model, as bytes a remote worker can load without seeing the library."""
    from engine.context import active_checkpoint

    path = active_checkpoint(lib)
    checkpoint = None if path is None else path.read_bytes()
    device = "cuda" if options.gpus_per_worker > 0 else "cpu"
    return WorkerSpec(lib.model_name, lib.active_model_id if path is not None else lib.base_model_id, device,
                      checkpoint, lib.settings.clip_seconds, transcribe, local_threads())


def local_threads() -> int:
    """The OpenMP thread count of a local run in this process's environment."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return os.cpu_count() or 1


def index_paths_ray(lib, paths: list[Path], token: CancelToken, transcribe: bool,
                    options: RayOptions, retry_errors: bool = False) -> Iterator[Progress]:
    """Like :func:`engine.index.indexer.index_paths`, with the embedding spread over Ray workers."""
    from engine.index.indexer import plan_index

    planned = yield from plan_index(lib, paths, retry_errors)
    if planned is None:
        return
    plan, summary = planned
    yield Progress("load", message=f"starting Ray ({options.address}, {options.workers} workers)")
    ray = connect(options)
    spec = worker_spec(lib, transcribe, options)
    actor_cls = ray.remote(num_cpus=options.cpus_per_worker, num_gpus=options.gpus_per_worker,
                           max_restarts=options.max_retries, max_task_retries=options.max_retries)(EmbedWorker)
    # Whisper's int8 encoder (CTranslate2) gives slightly different features (~1e-2) for another
    # thread count, and Ray sets OMP_NUM_THREADS to a worker's CPUs: workers use the threads a
    # local run uses (set OMP_NUM_THREADS for the driver to trade that equality for throughput).
    env = {"OMP_NUM_THREADS": str(spec.threads)}
    actors = [actor_cls.options(runtime_env={"env_vars": env}).remote(spec) for _ in range(max(1, options.workers))]
    try:
        # What the workers built: a checkpoint that does not fit leaves them on the base model,
        # and the vectors are written under the model that made them.
        model_id = yield from _workers_model(ray, actors[0], token)
        if model_id is None:
            yield Progress("cancelled", 0, len(plan.to_index), "files", "cancelled while the Ray workers started",
                           info={**summary, "files_done": 0})
            return
        yield from _run(ray, lib, actors, model_id, spec, plan.to_index, token, options, summary)
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)


def _workers_model(ray, actor, token: CancelToken):
    """Wait (cancellably, with progress) for a worker to build its model; its model id, or None."""
    ref = actor.model_id.remote()
    while not ray.wait([ref], timeout=WAIT_S)[0]:
        if token.cancelled:
            return None
        yield Progress("load", message="starting the Ray workers (loading their models)")
    return ray.get(ref)


def _run(ray, lib, actors, model_id: str, spec: WorkerSpec, todo: list[tuple[int, Path]], token: CancelToken,
         options: RayOptions, summary: dict) -> Iterator[Progress]:
    from engine.index.indexer import IndexWriter

    batches = [todo[i:i + options.batch] for i in range(0, len(todo), max(1, options.batch))]
    writer = IndexWriter(lib, model_id, spec.clip_seconds, len(todo), summary)
    queue = list(reversed(batches))
    running: dict[Any, tuple[int, list]] = {}
    try:
        for n in range(len(actors)):  # two batches per actor: one running, one ready
            for _ in range(2):
                _submit(queue, running, actors, n)
        while running:
            if token.cancelled:  # the caller kills the actors: their running tasks die with them
                yield writer.cancelled()
                return
            done, _ = ray.wait(list(running), num_returns=1, timeout=WAIT_S)
            if not done:  # a heartbeat, so the bar moves (and the GUI can cancel) while workers start
                yield writer.progress(f"{len(running)} batches on {len(actors)} Ray workers")
            for ref in done:
                n, batch = running.pop(ref)
                yield from _collect(ray, ref, batch, writer)
                _submit(queue, running, actors, n)
        yield writer.finished()
    finally:
        writer.close()


def _submit(queue: list, running: dict, actors: list, n: int) -> None:
    if queue:
        batch = queue.pop()
        running[actors[n].embed.remote([(vid, str(p)) for vid, p in batch])] = (n, batch)


def _collect(ray, ref, batch: list, writer) -> Iterator[Progress]:
    """Write one finished batch, a video per transaction. A batch whose worker kept dying beyond
    its retries is recorded as errors (the file may be what kills the decoder; `--retry-errors`
    tries again), never half-written."""
    try:
        results = ray.get(ref)
    except Exception as exc:  # RayActorError, WorkerCrashedError, ...: the retries are spent
        failure = MediaError(f"the Ray worker indexing it died ({type(exc).__name__})")
        results = [(vid, failure, None) for vid, _ in batch]
    paths = dict(batch)
    for video_id, error, payload in results:
        path = Path(paths[video_id])
        yield writer.progress(f"writing {path.name}", str(path))
        if error is None:
            writer.write(*payload)
        else:
            writer.fail(video_id, path, error)


def wait_started(ray, timeout_s: float = 120.0) -> None:
    """Block until the runtime reports its CPUs (used by tests and benchmarks for fair timings)."""
    t0 = time.monotonic()
    while not ray.cluster_resources().get("CPU") and time.monotonic() - t0 < timeout_s:
        time.sleep(0.2)
