"""The run loop of one fine-tuning run: optimiser, momentum heads, queues, the step, progress
reports and the resumable checkpoint. What is optimised comes from the objective chosen by name
(objective.py); the settings from TrainConfig (config.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from engine.errors import Cancelled, TrainingError
from engine.jobs import CancelToken, Progress
from engine.train.checkpoint import atomic_torch_save
from engine.train.config import RunState, TrainConfig
from engine.train.data import TrainingData, epoch_order, make_batch
from engine.train.deep_parts import DeepParts
from engine.train.evaluate import self_retrieval
from engine.train.objective import make_objective
from engine.train.precision import autocast, mixed_precision
from engine.train.publish import TailUpdate
from engine.train.queue import ema_update, momentum_copy
from engine.train.schedule import lr_factor


class TrainingRun:
    """The mutable state of one training run, with its loop and its resumable checkpoint."""

    def __init__(self, cfg: TrainConfig, heads, data: TrainingData, device: torch.device, parent_id: str,
                 deep: DeepParts | None = None):
        self.cfg, self.heads, self.data, self.device, self.parent_id = cfg, heads, data, device, parent_id
        self.deep = deep
        heads.log_temperature.requires_grad_(cfg.learn_temperature)
        heads.text_vat.requires_grad_(cfg.train_text_head)
        self.twin = momentum_copy(heads)
        # The parent as loaded (before calibration): the reference of the objective's keep terms.
        self.objective = make_objective(cfg.objective, cfg, momentum_copy(heads))
        # An objective may train parameters of its own (SwAV's prototypes): ``parameters()``, ``to()``.
        own = list(self.objective.parameters()) if hasattr(self.objective, "parameters") else []
        if own:
            self.objective.to(device)
        self.params = [p for p in heads.parameters() if p.requires_grad] + own
        groups = [{"params": self.params, "lr_scale": 1.0}]
        if deep is not None:
            groups.append({"params": list(deep.tail.parameters()), "lr_scale": cfg.tail_lr_scale})
        self.optimizer = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        # A queue longer than the library would hold several stale copies of every clip.
        self.queues = self.objective.make_queues(
            min(cfg.queue_size, max(0, len(data) - cfg.batch_size)), heads.cfg, device
        )
        self.amp_dtype, self.scaler = mixed_precision(device)
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
            head_dim = self.heads.cfg.audio_head_dim  # the heads read the Whisper mean only
            self.heads.audio_center.copy_(
                self.data.audio[self.data.has_audio][:, :head_dim].float().mean(dim=0).to(self.device)
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
        if "objective" in ckpt:
            self.objective.load_state_dict(ckpt["objective"])

    def save_resume(self, path: Path) -> None:
        atomic_torch_save(
            {
                "format": 1,
                "parent_id": self.parent_id,
                "config": self.cfg.as_dict(),
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
                **({"objective": self.objective.state_dict()} if hasattr(self.objective, "state_dict") else {}),
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
        with autocast(self.device, self.amp_dtype):
            video_input = None if self.deep is None else self.deep.features(rows)
            losses = self.objective.losses(self.heads, batch, self.queues, temperature, video_input)
        self.optimizer.zero_grad(set_to_none=True)
        if losses.total.requires_grad:
            self.scaler.scale(losses.total).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        ema_update(self.twin, self.heads, self.cfg.momentum)
        with autocast(self.device, self.amp_dtype):
            self.objective.after_step(self.twin, batch, self.queues,
                                      None if video_input is None else video_input.detach())
        return {
            "loss": float(losses.total.detach()),
            **{f"loss_{name}": value for name, value in losses.parts.items()},
            "lr": lr,
            "temperature": float(temperature.detach()),
        }

    def _progress_report(self, record: dict, epoch: int, rate: float) -> Progress:
        fraction = self.progress()
        total = self.total_steps() or max(self.state.step, round(self.state.step / max(fraction, 1e-9)))
        eta = self.state.elapsed_s * (1.0 - fraction) / max(fraction, 1e-9)
        queue = len(next(iter(self.queues.values()))) if self.queues else 0
        info = {**record, "clips_per_s": rate, "epoch": epoch + 1, "queue": queue,
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

    # ---- results --------------------------------------------------------------------------
    def report(self) -> dict:
        """What the published model records about its training (JSON-serialisable)."""
        return {
            "parent": self.parent_id,
            "config": self.cfg.as_dict(),
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


def downsample(history: list[dict], limit: int) -> list[dict]:
    """At most about ``limit`` evenly spaced records, always with the last one."""
    if len(history) <= limit:
        return history
    stride = len(history) / limit
    return [history[int(i * stride)] for i in range(limit)] + [history[-1]]
