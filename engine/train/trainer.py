"""Self-supervised fine-tuning of the FAC heads on the features stored in a library.

``train(lib, ...)`` is a generator of Progress: it trains a copy of the active heads (NCE in S_va
between a clip's picture and sound, MIL-NCE in S_vat between its picture and the sentences said or
heard around it), checkpoints so a crashed run resumes, then publishes a new model (re-projected
embeddings, new HNSW files, one-transaction switch; see ``publish.py``). The active model is never
modified in place, so the previous one stays available.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from engine.device import resolve_device
from engine.errors import Cancelled, TrainingError
from engine.jobs import CancelToken, Progress
from engine.models.vision_tail import pretrained_tail
from engine.train.checkpoint import atomic_torch_save, load_checkpoint
from engine.train.data import TrainingData, epoch_order, load_training_data, make_batch
from engine.train.deep import TrunkCache, build_trunk_cache, remove_cache
from engine.train.objective import ExtraTerms, make_queues, push_momentum_embeddings, step_losses
from engine.train.publish import TailUpdate, publish
from engine.train.queue import ema_update, momentum_copy
from engine.train.schedule import lr_factor

RESUME_FILE = "train-resume.pt"
DEFAULT_EPOCHS = 30


@dataclass
class TrainConfig:
    epochs: int | None = None
    minutes: float | None = None
    device: str = "auto"
    deep: bool = False
    batch_size: int = 64
    lr: float = 1e-3
    tail_lr_scale: float = 0.1  # deep mode: the pretrained vision blocks learn 10x slower than the heads
    weights: tuple[float, float] = (1.0, 1.0)  # (NCE in S_va, MIL-NCE in S_vat); MMV used 1:1 and 10:1
    queue_size: int = 4096
    momentum: float = 0.99
    gdt_shift: int = 0  # >0: clips up to this many positions apart in a video are positives
    sentence_window: float = 2.0  # seconds around a clip in which a sentence counts as its narration
    bridge_weight: float = 1.0   # audio -> S_vat bridge (see objective.step_losses)
    keep_weight: float = 1.0     # stay near the parent's S_vat video vectors (objective._keep_term)
    keep_audio_weight: float = 0.0  # stay near the parent's S_va audio vectors (sound-alike search)
    # The text head maps every future query, so by default it keeps the text tower's geometry
    # and only the video/audio side moves: fitting it to a few hundred sentences of one library
    # would bend the space for all the queries those sentences do not cover.
    train_text_head: bool = False
    # Which feature centres to set from the library's mean before training ("video", "audio").
    # Only the video centre by default: the audio feature is two unit-length blocks whose library
    # mean (estimated from few clips) mostly removes real signal; on the shared media, setting the
    # audio centre alone lowered sound-alike R@5 from 0.90 to 0.72.
    calibrate: tuple[str, ...] = ("video",)
    learn_temperature: bool = False
    weight_decay: float = 0.0
    warmup: float = 0.1
    checkpoint_every: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs is None and self.minutes is None:
            self.epochs = DEFAULT_EPOCHS
        if self.batch_size < 2:
            raise TrainingError("batch_size must be at least 2 (a contrastive loss needs negatives)")
        if (self.epochs is not None and self.epochs <= 0) or (self.minutes is not None and self.minutes <= 0):
            raise TrainingError("epochs and minutes must be positive")
        self.weights = (float(self.weights[0]), float(self.weights[1]))


@dataclass
class RunState:
    """Everything a resumed run needs besides the data."""

    step: int = 0
    elapsed_s: float = 0.0
    history: list[dict] = field(default_factory=list)


def train(lib, *, token: CancelToken, resume: bool = False, **options) -> Iterator[Progress]:
    """Fine-tune the active model on ``lib``'s stored features and switch to the result.

    ``options`` are the fields of :class:`TrainConfig` (epochs, minutes, device, deep, batch_size,
    lr, weights, ...). With ``deep`` the last vision blocks train too, on clips decoded again
    (see deep.py). Yields Progress (stage "prepare", "decode" in deep mode, "train", then
    "reproject", "index", "done"); raises :class:`~engine.errors.Cancelled` when ``token`` is set
    and TrainingError on bad input.
    """
    base = lib.load_models()
    resume_path = Path(lib.paths.models_dir) / RESUME_FILE
    checkpoint = load_checkpoint(resume_path) if resume and resume_path.exists() else None
    cfg = TrainConfig(**options) if checkpoint is None else _saved_config(checkpoint, options.get("device", "auto"))
    choice = resolve_device(cfg.device)
    device = choice.device
    yield Progress(stage="prepare", message=f"loading stored features ({choice.note})")
    data = load_training_data(
        lib.db,
        backbone_id=base.config.backbone_id,
        vision_dim=base.config.vision_dim,
        audio_dim=base.config.audio_dim,
        text_dim=base.config.text_dim,
        window=cfg.sentence_window,
        tail_id=base.tail_id,
    )
    deep = None
    if cfg.deep:
        if checkpoint is None:  # only a resumed run may reuse decoded clips: the library may have changed
            remove_cache(lib.paths.models_dir)
        deep, data = yield from _prepare_deep(lib, base, data, token, device)
    if int(data.has_audio.sum()) < 2 and not any(len(s) for s in data.clip_sentences):
        raise TrainingError("nothing to learn from: fewer than two clips with sound and no transcripts")
    heads = copy.deepcopy(base.heads).to(device)
    run = _Run(cfg, heads, data, device, base.model_id, deep)
    if checkpoint is not None:
        run.restore(checkpoint)
        yield Progress(stage="prepare", message=f"resuming the interrupted run at step {run.state.step}")
    else:
        run.calibrate_centres()
    yield from run.loop(token, resume_path)
    yield from publish(lib, run.heads, run.report(), token=token, device=device, tail=run.tail_update(base))
    resume_path.unlink(missing_ok=True)
    run.deep = deep = None  # unmap the trunk cache before deleting it (Windows refuses to delete mapped files)
    remove_cache(lib.paths.models_dir)


def _prepare_deep(lib, base, data: TrainingData, token: CancelToken, device: torch.device):
    """Decode the clips again and cache the frozen trunk (deep mode); -> (DeepParts, the data
    restricted to the clips that could be decoded)."""
    cache = None
    for item in build_trunk_cache(lib.db, base, data.clip_ids, token, Path(lib.paths.models_dir)):
        if isinstance(item, TrunkCache):
            cache = item
        else:
            yield item
    keep = np.flatnonzero(np.isin(data.clip_ids, cache.clip_ids))
    data = data.subset(keep)
    if cache.skipped:
        note = "; ".join(cache.skipped[:3])
        yield Progress(stage="prepare", message=f"left out {len(cache.skipped)} videos: {note}")
    tail = copy.deepcopy(base.tail) if base.tail is not None else pretrained_tail(base.config.deep_from_block)
    rows = torch.from_numpy(cache.rows_for(data.clip_ids))
    trunk = cache.trunk
    if device.type == "cuda":  # float16, ~19 KB per frame: the library's rows go to the GPU once
        trunk, rows = trunk[rows].to(device), torch.arange(len(rows))
    return DeepParts(tail.to(device).float().requires_grad_(True), trunk, rows), data


def _saved_config(checkpoint: dict, device: str) -> TrainConfig:
    """A resumed run continues the interrupted run's schedule; only the device may change."""
    known = {f.name for f in fields(TrainConfig)}
    saved = {k: v for k, v in checkpoint["config"].items() if k in known}
    saved["calibrate"] = tuple(saved.get("calibrate", ("video",)))
    return TrainConfig(**{**saved, "weights": tuple(saved["weights"]), "device": device})


@dataclass
class DeepParts:
    """Deep mode: the trainable vision tail, and the cached trunk activations (memory-mapped on
    the CPU, or on the GPU) with ``rows``: the cache row of each TrainingData row."""

    tail: torch.nn.Module
    trunk: torch.Tensor  # [M, T, C, h, w] float16
    rows: torch.Tensor   # [N] int64

    def features(self, rows: np.ndarray) -> torch.Tensor:
        """[B, T, 1280] of these data rows, with gradients into the tail."""
        index = self.rows[torch.from_numpy(np.asarray(rows, np.int64))]
        x = self.trunk[index.to(self.trunk.device)]
        b, t = x.shape[:2]
        param = next(self.tail.parameters())
        return self.tail(x.reshape(b * t, *x.shape[2:]).to(param.device, torch.float32)).reshape(b, t, -1)

    @torch.no_grad()
    def all_features(self, chunk: int = 128) -> torch.Tensor:
        """[N, T, 1280] float32 on the CPU, without gradients (for metrics and publishing)."""
        parts = [self.features(np.arange(i, min(i + chunk, len(self.rows)))).float().cpu()
                 for i in range(0, len(self.rows), chunk)]
        return torch.cat(parts)


class _Run:
    """The mutable state of one training run, with its loop and its resumable checkpoint."""

    def __init__(self, cfg: TrainConfig, heads, data: TrainingData, device: torch.device, parent_id: str,
                 deep: DeepParts | None = None):
        self.cfg, self.heads, self.data, self.device, self.parent_id = cfg, heads, data, device, parent_id
        self.deep = deep
        heads.log_temperature.requires_grad_(cfg.learn_temperature)
        heads.text_vat.requires_grad_(cfg.train_text_head)
        self.twin = momentum_copy(heads)
        # The parent as loaded (before calibration): the reference of the ``keep`` term.
        self.extra_terms = ExtraTerms(cfg.bridge_weight, cfg.keep_weight, cfg.keep_audio_weight,
                                      momentum_copy(heads))
        self.params = [p for p in heads.parameters() if p.requires_grad]
        groups = [{"params": self.params, "lr_scale": 1.0}]
        if deep is not None:
            groups.append({"params": list(deep.tail.parameters()), "lr_scale": cfg.tail_lr_scale})
        self.optimizer = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        hc = heads.cfg
        # A queue longer than the library would hold several stale copies of every clip.
        self.queues = make_queues(
            min(cfg.queue_size, max(0, len(data) - cfg.batch_size)), hc.va_dim, hc.vat_dim, device
        )
        self.amp_dtype, self.scaler = _mixed_precision(device)
        self.state = RunState()
        self.steps_per_epoch = len(epoch_order(data, cfg.batch_size, 0, cfg.seed, cfg.gdt_shift))
        self.metrics_before: dict = {}
        self._epoch_cache: tuple[int, list[np.ndarray]] = (-1, [])

    # ---- set-up ---------------------------------------------------------------------------
    @torch.no_grad()
    def calibrate_centres(self) -> None:
        """Unsupervised calibration: centre the features on the library's own mean."""
        if "video" in self.cfg.calibrate:
            self.heads.video_center.copy_(self.data.video.float().mean(dim=(0, 1)).to(self.device))
        if "audio" in self.cfg.calibrate and bool(self.data.has_audio.any()):
            self.heads.audio_center.copy_(
                self.data.audio[self.data.has_audio].float().mean(dim=0).to(self.device)
            )
        ema_update(self.twin, self.heads, momentum=0.0)
        self.metrics_before = self_retrieval(self.heads, self.data, self.device)

    def restore(self, ckpt: dict) -> None:
        if ckpt.get("parent_id") != self.parent_id:
            raise TrainingError(
                f"the interrupted run fine-tuned {ckpt.get('parent_id')!r}, but the active model "
                f"is {self.parent_id!r}; start a new run instead of resuming"
            )
        self.heads.load_state_dict(ckpt["heads"])
        if self.deep is not None:
            self.deep.tail.load_state_dict(ckpt["tail"])
        self.twin.load_state_dict(ckpt["twin"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scaler.load_state_dict(ckpt["scaler"])
        for name, queue in self.queues.items():
            queue.load_state_dict(ckpt["queues"][name])
        self.state = RunState(int(ckpt["step"]), float(ckpt["elapsed_s"]), list(ckpt["history"]))
        self.metrics_before = dict(ckpt["metrics_before"])

    def save_resume(self, path: Path) -> None:
        atomic_torch_save(
            {
                "format": 1,
                "parent_id": self.parent_id,
                "config": {**asdict(self.cfg), "weights": list(self.cfg.weights)},
                "step": self.state.step,
                "elapsed_s": self.state.elapsed_s,
                "history": self.state.history,
                "heads": self.heads.state_dict(),
                **({} if self.deep is None else {"tail": self.deep.tail.state_dict()}),
                "twin": self.twin.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(),
                "queues": {n: q.state_dict() for n, q in self.queues.items()},
                "metrics_before": self.metrics_before,
            },
            path,
        )

    # ---- the loop -------------------------------------------------------------------------
    def total_steps(self) -> int | None:
        return None if self.cfg.epochs is None else self.cfg.epochs * self.steps_per_epoch

    def progress(self) -> float:
        """Fraction of the run done: by steps, by time, or whichever limit comes first."""
        fractions = []
        if self.total_steps():
            fractions.append(self.state.step / self.total_steps())
        if self.cfg.minutes is not None:
            fractions.append(self.state.elapsed_s / (60.0 * self.cfg.minutes))
        return max(fractions)

    def batch_rows(self, step: int) -> tuple[int, np.ndarray]:
        """(epoch, clip rows) of ``step``; the epoch's order is computed once and cached."""
        epoch, position = divmod(step, self.steps_per_epoch)
        if self._epoch_cache[0] != epoch:
            batches = epoch_order(self.data, self.cfg.batch_size, epoch, self.cfg.seed, self.cfg.gdt_shift)
            self._epoch_cache = (epoch, batches)
        return epoch, self._epoch_cache[1][position]

    def loop(self, token: CancelToken, resume_path: Path) -> Iterator[Progress]:
        try:
            yield from self._steps(token, resume_path)
        except Cancelled:
            self.save_resume(resume_path)  # a cancelled run can be resumed later (train --resume)
            raise

    def _steps(self, token: CancelToken, resume_path: Path) -> Iterator[Progress]:
        started, rate = time.perf_counter() - self.state.elapsed_s, None
        while self.progress() < 1.0:
            token.raise_if_cancelled()
            epoch, rows = self.batch_rows(self.state.step)
            t0 = time.perf_counter()
            record = self.one_step(make_batch(self.data, rows, self.device), self.progress(), rows)
            now = time.perf_counter()
            self.state.step += 1
            self.state.elapsed_s = now - started
            speed = len(rows) / max(now - t0, 1e-6)
            rate = speed if rate is None else 0.9 * rate + 0.1 * speed  # smoothed clips/s for the ETA
            self.state.history.append({**record, "step": self.state.step, "epoch": epoch})
            if self.state.step % self.cfg.checkpoint_every == 0:
                self.save_resume(resume_path)
            yield self._progress_report(record, epoch, rate)

    def one_step(self, batch, progress: float, rows: np.ndarray) -> dict:
        lr = self.cfg.lr * lr_factor(progress, self.cfg.warmup)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        self.heads.train()
        temperature = self.heads.log_temperature.exp().clamp(0.01, 1.0)
        with _autocast(self.device, self.amp_dtype):
            video_input = None if self.deep is None else self.deep.features(rows)
            losses = step_losses(self.heads, batch, self.queues, temperature, self.cfg.weights,
                                 self.cfg.gdt_shift, self.extra_terms, video_input)
        self.optimizer.zero_grad(set_to_none=True)
        if losses.total.requires_grad:
            self.scaler.scale(losses.total).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        ema_update(self.twin, self.heads, self.cfg.momentum)
        with _autocast(self.device, self.amp_dtype):
            push_momentum_embeddings(self.twin, batch, self.queues,
                                     None if video_input is None else video_input.detach())
        return {
            "loss": float(losses.total.detach()),
            "loss_nce": losses.nce,
            "loss_milnce": losses.milnce,
            "loss_bridge": losses.bridge,
            "loss_keep": losses.keep,
            "lr": lr,
            "temperature": float(temperature.detach()),
        }

    def _progress_report(self, record: dict, epoch: int, rate: float) -> Progress:
        fraction = self.progress()
        total = self.total_steps() or max(self.state.step, round(self.state.step / max(fraction, 1e-9)))
        eta = self.state.elapsed_s * (1.0 - fraction) / max(fraction, 1e-9)
        info = {**record, "clips_per_s": rate, "epoch": epoch + 1, "queue": len(self.queues["audio_va"]),
                "elapsed_s": self.state.elapsed_s}
        return Progress(
            stage="train",
            done=self.state.step,
            total=total,
            unit="steps",
            eta_s=eta,
            info=info,
            message=f"epoch {epoch + 1}: loss {record['loss']:.3f}",
        )

    def report(self) -> dict:
        """What the published model records about its training (JSON-serialisable)."""
        return {
            "parent": self.parent_id,
            "config": {**asdict(self.cfg), "weights": list(self.cfg.weights)},
            "data": self.data.summary(),
            "steps": self.state.step,
            "train_seconds": round(self.state.elapsed_s, 2),
            "history": downsample(self.state.history, 500),
            "device": str(self.device),
            "metrics": {
                "before": self.metrics_before,
                "after": self_retrieval(self.heads, self.data, self.device, video=self.video_features()),
            },
        }

    def video_features(self) -> torch.Tensor:
        """Every row's video features as the trained model sees them."""
        return self.data.video if self.deep is None else self.deep.all_features()

    def tail_update(self, parent) -> TailUpdate | None:
        """What the published model's checkpoint carries besides the heads: the tail trained
        here (deep mode), the parent's tail (heads-only run on a deep parent), or nothing."""
        if self.deep is not None:
            return TailUpdate(self.deep.tail, None, self.data.clip_ids, self.video_features())
        if parent.tail is not None:
            return TailUpdate(parent.tail, parent.tail_id)
        return None


def _mixed_precision(device: torch.device) -> tuple[torch.dtype | None, torch.amp.GradScaler]:
    """bf16 autocast where the GPU supports it, else fp16 with loss scaling; full precision on CPU."""
    if device.type != "cuda":
        return None, torch.amp.GradScaler("cpu", enabled=False)
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16, torch.amp.GradScaler("cuda", enabled=False)
    return torch.float16, torch.amp.GradScaler("cuda", enabled=True)


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def downsample(history: list[dict], limit: int) -> list[dict]:
    if len(history) <= limit:
        return history
    stride = len(history) / limit
    return [history[int(i * stride)] for i in range(limit)] + [history[-1]]


@torch.no_grad()
def self_retrieval(heads, data: TrainingData, device: torch.device, limit: int = 2000,
                   video: torch.Tensor | None = None) -> dict:
    """Sound -> picture retrieval among the library's own clips (no labels): is the true clip's
    video (R@1 clip) or any clip of the same video (R@1 video) ranked first for each clip's audio?"""
    rows = torch.nonzero(data.has_audio).flatten()[:limit]
    if len(rows) < 2:
        return {}
    heads.eval()
    video = heads.project_video((data.video if video is None else video)[rows].to(device))["va"].float()
    audio = heads.project_audio(data.audio[rows].to(device))["va"].float()
    best = (audio @ video.T).argmax(dim=1).cpu()
    same_clip = best == torch.arange(len(rows))
    same_video = data.keys[rows][best, 0] == data.keys[rows][:, 0]
    return {
        "clips": len(rows),
        "a2v_r1_clip": round(float(same_clip.float().mean()), 4),
        "a2v_r1_video": round(float(same_video.float().mean()), 4),
    }
