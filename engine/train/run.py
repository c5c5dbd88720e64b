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
from engine.train.evaluate import held_out_figures
from engine.train.holdout import Holdout
from engine.train.noisy import NoisyAudio
from engine.train.objective import make_objective
from engine.train.precision import autocast, mixed_precision
from engine.train.publish import TailUpdate
from engine.train.queue import ema_update, momentum_copy
from engine.train.schedule import lr_factor
from engine.train.validation import Validation


class TrainingRun:
    """The mutable state of one training run, with its loop and its resumable checkpoint."""

    def __init__(self, cfg: TrainConfig, heads, data: TrainingData, device: torch.device, parent_id: str,
                 deep: DeepParts | None = None, holdout: Holdout | None = None, held_deep: DeepParts | None = None,
                 noisy: NoisyAudio | None = None):
        """``data``/``deep``: what is trained on; ``holdout``: the split (its ``held`` part is only
        ever evaluated), with ``held_deep`` the tail's view of it in deep mode; ``noisy``: noisy
        copies of ``data``'s sounds that batches use some of the time (noisy.py)."""
        self.cfg, self.heads, self.data, self.device, self.parent_id = cfg, heads, data, device, parent_id
        self.deep, self.holdout, self.held_deep, self.noisy = deep, holdout, held_deep, noisy
        heads.log_temperature.requires_grad_(cfg.learn_temperature)
        heads.text_vat.requires_grad_(cfg.train_text_head)
        heads.audio_va.requires_grad_(cfg.train_audio_head)
        self.twin = momentum_copy(heads)
        # The parent as loaded (before calibration): the reference of the objective's keep terms
        # and of the "before" figures.
        self.parent = momentum_copy(heads)
        self.objective = make_objective(cfg.objective, cfg, self.parent)
        # An objective may train parameters of its own (SwAV's prototypes): ``parameters()``, ``to()``.
        own = list(self.objective.parameters()) if hasattr(self.objective, "parameters") else []
        if own:
            self.objective.to(device)
        self.params = [p for p in heads.parameters() if p.requires_grad] + own
        self.validation = None if holdout is None or holdout.held is None else Validation(
            holdout.held, held_deep, self.objective, heads.cfg, device, cfg.batch_size, cfg.patience, cfg.seed,
            cfg.patience_min_steps)
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
        if self.validation is not None:
            self.metrics_before = held_out_figures(self.parent, self.holdout.held, self.device)
            self.validation.observe(self.validation.loss(self.heads), 0, self.heads, self._tail())

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
        if self.validation is not None and ckpt.get("validation"):
            self.validation.load_state_dict(ckpt["validation"])

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
                "validation": None if self.validation is None else self.validation.state_dict(),
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
        """Train until the step or time limit, or until the validation loss stops improving;
        then go back to the state with the best validation loss."""
        try:
            yield from self._steps(token, resume_path)
        except Cancelled:
            self.save_resume(resume_path)  # a cancelled run can be resumed later (train --resume)
            raise
        if self.validation is not None:
            if self.state.history and "val_loss" not in self.state.history[-1]:
                self.validate(self.state.history[-1])  # a time limit ended the run mid-epoch
            self.validation.restore_best(self.heads, self._tail())

    def _tail(self) -> torch.nn.Module | None:
        return None if self.deep is None else self.deep.tail

    def validate(self, record: dict) -> None:
        """Add the held-out loss to this step's record, and keep the state if it is the best."""
        loss = self.validation.loss(self.heads)
        improved = self.validation.observe(loss, self.state.step, self.heads, self._tail())
        record.update(val_loss=loss, best_val_loss=self.validation.best_loss, val_improved=improved)

    def _steps(self, token: CancelToken, resume_path: Path) -> Iterator[Progress]:
        started, rate = time.perf_counter() - self.state.elapsed_s, None
        while self.progress() < 1.0:
            token.raise_if_cancelled()
            epoch, rows = self.batch_rows(self.state.step)
            t0 = time.perf_counter()
            batch = make_batch(self.data, rows, self.device)
            if self.noisy is not None:
                batch = self.noisy.apply(batch, rows, self.state.step)
            record = self.one_step(batch, self.progress(), rows)
            now = time.perf_counter()
            self.state.step += 1
            self.state.elapsed_s = now - started
            speed = len(rows) / max(now - t0, 1e-6)
            rate = speed if rate is None else 0.9 * rate + 0.1 * speed  # smoothed clips/s for the ETA
            record = {**record, "step": self.state.step, "epoch": epoch}
            epoch_ends = self.state.step % self.steps_per_epoch == 0
            if self.validation is not None and epoch_ends:
                self.validate(record)
            self.state.history.append(record)
            if self.state.step % self.cfg.checkpoint_every == 0:
                self.save_resume(resume_path)
            yield self._progress_report(record, epoch, rate)
            if self.validation is not None and self.validation.should_stop():
                yield Progress(stage="train", message=(
                    f"stopped early: the held-out loss has not improved for {self.validation.bad_epochs} epochs; "
                    f"keeping step {self.validation.best_step}"), info={"stopped_early": True})
                return

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
        held = {} if self.holdout is None else self.holdout.summary()
        if self.validation is not None:
            held.update(
                before=self.metrics_before,
                after=held_out_figures(self.heads, self.holdout.held, self.device,
                                       video=None if self.held_deep is None else self.held_deep.all_features()),
                best_step=self.validation.best_step, best_val_loss=self.validation.best_loss,
                stopped_early=self.validation.should_stop())
        return {
            "parent": self.parent_id,
            "config": self.cfg.as_dict(),
            "data": {**self.data.summary(), **({} if self.noisy is None else {"noisy": self.noisy.summary()})},
            "steps": self.state.step,
            "train_seconds": round(self.state.elapsed_s, 2),
            "history": downsample(self.state.history, 500),
            "validation": [{"step": r["step"], "val_loss": r["val_loss"]}
                           for r in self.state.history if "val_loss" in r],
            "device": str(self.device),
            # Figures only on videos the run never trained on (none when the library is too small).
            "metrics": {"held_out": held},
        }

    def video_features(self) -> torch.Tensor:
        """Every row's video features as the trained model sees them."""
        return self.data.video if self.deep is None else self.deep.all_features()

    def tail_update(self, parent) -> TailUpdate | None:
        """What the published model's checkpoint carries besides the heads: the tail trained
        here (deep mode), the parent's tail (heads-only run on a deep parent), or nothing."""
        if self.deep is not None:
            clip_ids, features = self.data.clip_ids, self.video_features()
            if self.held_deep is not None:  # the held-out clips get the new tail's features too
                clip_ids = np.concatenate([clip_ids, self.holdout.held.clip_ids])
                features = torch.cat([features, self.held_deep.all_features()])
            return TailUpdate(self.deep.tail, None, clip_ids, features)
        if parent.tail is not None:
            return TailUpdate(parent.tail, parent.tail_id)
        return None


def downsample(history: list[dict], limit: int) -> list[dict]:
    """At most about ``limit`` evenly spaced records, always with the last one."""
    if len(history) <= limit:
        return history
    stride = len(history) / limit
    return [history[int(i * stride)] for i in range(limit)] + [history[-1]]
