"""Validation on the held-out videos: the objective's loss on clips never trained on, measured
every epoch; the best state by it is kept, and the run stops when it has not improved for
``patience`` epochs and ``min_steps`` steps (on a small library a long run otherwise learns its
clips by heart; its epochs are a step or two, so the step floor keeps noise from ending it)."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch

from engine.train.data import TrainingData, make_batch
from engine.train.deep_parts import DeepParts

MIN_DELTA = 1e-4  # a smaller fall of the validation loss does not count as an improvement


def _copy(state: dict) -> dict:
    return {k: v.detach().clone().cpu() for k, v in state.items()}


class Validation:
    def __init__(self, held: TrainingData, deep: DeepParts | None, objective, heads_cfg, device: torch.device,
                 batch_size: int, patience: int, seed: int = 0, min_steps: int = 0):
        self.held, self.deep, self.objective, self.device = held, deep, objective, device
        self.patience, self.min_steps, self.last_step = patience, min_steps, 0
        # No queued negatives: every epoch's loss must see the same comparisons.
        self.queues = objective.make_queues(0, heads_cfg, device)
        order = np.random.default_rng([seed, 7919]).permutation(len(held))
        self.batches = np.array_split(order, max(1, math.ceil(len(held) / batch_size)))
        self.best_loss: float | None = None
        self.best_step = 0
        self.bad_epochs = 0
        self.best_state: dict | None = None

    @torch.no_grad()
    def loss(self, heads) -> float:
        """The objective's mean loss over the held-out clips (fixed batches, no gradients)."""
        heads.eval()
        temperature = heads.log_temperature.exp().clamp(0.01, 1.0)
        total = 0.0
        for rows in self.batches:
            batch = make_batch(self.held, rows, self.device)
            video_input = None if self.deep is None else self.deep.features(rows)
            total += float(self.objective.losses(heads, batch, self.queues, temperature, video_input).total) * len(rows)
        return total / len(self.held)

    def observe(self, loss: float, step: int, heads, tail: torch.nn.Module | None) -> bool:
        """Record one epoch's loss; keep a copy of the state when it is the best so far."""
        self.last_step = step
        if self.best_loss is not None and loss > self.best_loss - MIN_DELTA:
            self.bad_epochs += 1
            return False
        self.best_loss, self.best_step, self.bad_epochs = loss, step, 0
        self.best_state = {"heads": _copy(heads.state_dict()),
                           **({} if tail is None else {"tail": _copy(tail.state_dict())})}
        if hasattr(self.objective, "state_dict"):  # its own trained parameters (SwAV's prototypes)
            self.best_state["objective"] = copy.deepcopy(self.objective.state_dict())
        return True

    def should_stop(self) -> bool:
        return (self.patience > 0 and self.bad_epochs >= self.patience
                and self.last_step - self.best_step >= self.min_steps)

    def restore_best(self, heads, tail: torch.nn.Module | None) -> None:
        if self.best_state is None:
            return
        heads.load_state_dict(self.best_state["heads"])
        if tail is not None and "tail" in self.best_state:
            tail.load_state_dict(self.best_state["tail"])
        if "objective" in self.best_state:
            self.objective.load_state_dict(self.best_state["objective"])

    def state_dict(self) -> dict:
        return {"best_loss": self.best_loss, "best_step": self.best_step, "bad_epochs": self.bad_epochs,
                "best_state": self.best_state, "last_step": self.last_step}

    def load_state_dict(self, state: dict) -> None:
        self.best_loss, self.best_step = state["best_loss"], int(state["best_step"])
        self.bad_epochs, self.best_state = int(state["bad_epochs"]), state["best_state"]
        self.last_step = int(state.get("last_step", self.best_step))
