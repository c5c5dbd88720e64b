"""Training objectives, chosen by name, and the default one ("mmv"): NCE in S_va plus MIL-NCE
in S_vat (and the audio bridge into S_vat), with queued negatives.

The run loop (run.py) only knows the :class:`Objective` interface: ``make_queues`` once,
``losses`` every step, ``after_step`` with the momentum heads. A new objective is a class
registered with :func:`register` and selected by ``TrainConfig.objective``.

MMV: the online heads embed the batch; the momentum copy embeds it again without gradients and
those embeddings are pushed into the queues after the step (MoCo). Clips without audio skip NCE,
clips without sentences skip MIL-NCE; a batch with neither gives a zero loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch

from engine.errors import TrainingError
from engine.train.data import Batch
from engine.train.losses import mil_nce, symmetric_nce
from engine.train.queue import KeyedQueue, related_mask

QUEUE_NAMES = ("video_va", "audio_va", "text_vat")


@dataclass
class StepLosses:
    """One step's loss to minimise, and its named parts (floats, reported as ``loss_<name>``)."""

    total: torch.Tensor
    parts: dict[str, float] = field(default_factory=dict)


class Objective(Protocol):
    """What the run loop needs from a training objective."""

    name: str

    def make_queues(self, size: int, heads_cfg, device: torch.device) -> dict[str, KeyedQueue]: ...

    def losses(self, heads, batch: Batch, queues: dict[str, KeyedQueue], temperature: torch.Tensor,
               video_input: torch.Tensor | None) -> StepLosses: ...

    def after_step(self, twin, batch: Batch, queues: dict[str, KeyedQueue],
                   video_input: torch.Tensor | None) -> None: ...


# name -> factory(cfg: TrainConfig, parent: frozen copy of the parent heads) -> Objective
OBJECTIVES: dict[str, Callable[..., Objective]] = {}


def register(name: str) -> Callable:
    """Class decorator: make an objective selectable as ``TrainConfig(objective=name)``."""

    def add(factory: Callable) -> Callable:
        OBJECTIVES[name] = factory
        return factory

    return add


def make_objective(name: str, cfg, parent) -> Objective:
    """The objective called ``name`` for this run; TrainingError for an unknown name."""
    import engine.train.mmv_family  # noqa: F401  (registers simclr, barlow, swav, gdt, gdt-td, avlnet)

    if name not in OBJECTIVES:
        raise TrainingError(f"unknown training objective {name!r}; known: {', '.join(sorted(OBJECTIVES))}")
    return OBJECTIVES[name](cfg, parent)


def make_queues(size: int, va_dim: int, vat_dim: int, device: torch.device) -> dict[str, KeyedQueue]:
    return {
        "video_va": KeyedQueue(size, va_dim, device),
        "audio_va": KeyedQueue(size, va_dim, device),
        "text_vat": KeyedQueue(size, vat_dim, device),
    }


def _nce_term(video_va, audio_va, keys, queues, temperature, gdt_shift) -> torch.Tensor:
    pos_mask = related_mask(keys, keys, gdt_shift)
    queued_video, queue_keys = queues["video_va"].contents()
    queued_audio, _ = queues["audio_va"].contents()
    ok = ~related_mask(keys, queue_keys, gdt_shift)  # a clip (or its GDT neighbours) is no negative
    return symmetric_nce(
        video_va,
        audio_va,
        temperature,
        pos_mask=pos_mask,
        audio_negatives=queued_audio,
        video_negatives=queued_video,
        negatives_mask=ok,
    )


def _milnce_term(video_vat, text_vat, batch: Batch, queues, temperature) -> torch.Tensor:
    queued_text, queue_keys = queues["text_vat"].contents()
    same_sentence = (batch.text_ids[:, None] == queue_keys[None, :, 0]).float()  # [S_b, K]
    ok = (batch.text_mask.float() @ same_sentence) == 0  # [B, K]
    return mil_nce(
        video_vat, text_vat, batch.text_mask, temperature, text_negatives=queued_text, negatives_mask=ok
    )


@dataclass
class ExtraTerms:
    """Weights of the auxiliary terms (bridge, keep, keep_audio) and the frozen parent heads that
    the keep terms compare with."""

    bridge: float = 1.0
    keep: float = 1.0
    keep_audio: float = 0.0
    parent: object | None = None


def _keep_term(video_vat: torch.Tensor, parent, batch: Batch) -> torch.Tensor:
    """Learning without forgetting (Li & Hoiem, 2016): mean cosine distance between the clips'
    S_vat video vectors and the parent model's. Text queries reach videos through S_vat, and a
    library's narration (often just "music") covers few of the words users will type, so this
    keeps what the parent knew wherever the narration does not argue against it."""
    with torch.no_grad():
        target = parent.project_video(batch.video)["vat"].float()
    return (1.0 - (video_vat.float() * target).sum(dim=-1)).mean()


def _keep_audio_term(audio_va: torch.Tensor, parent, batch: Batch) -> torch.Tensor:
    """The same for the clips' S_va audio vectors: keeps the parent's sound-alike geometry, so
    that the picture moves towards the sound rather than both drifting."""
    with torch.no_grad():
        target = parent.project_audio(batch.audio)["va"].float()
    return (1.0 - (audio_va.float() * target).sum(dim=-1)).mean()


def step_losses(heads, batch: Batch, queues: dict[str, KeyedQueue], temperature, weights: tuple[float, float],
                gdt_shift: int, extra: ExtraTerms | None = None,
                video_input: torch.Tensor | None = None) -> StepLosses:
    """total = w_nce * NCE(S_va) + w_milnce * MIL-NCE(S_vat) + bridge(S_vat) + keep terms.

    The bridge is FAC's route for sound into the coarse space: audio reaches S_vat only through
    S_va, and here (unlike video, whose S_vat vector starts as the text-aligned ConSE bridge) its
    va -> vat map starts random. The bridge is an NCE that pulls a clip's audio S_vat vector to
    its own video S_vat vector, video side detached so the text-aligned geometry does not move;
    text -> sound ("heard") search then works by transitivity.

    ``video_input`` [B, T, 1280]: the video features to train on when they differ from the
    parent's stored ones in ``batch.video`` (deep mode: the trainable tail's output); the keep
    terms still compare with the parent on ``batch.video``.
    """
    extra = extra or ExtraTerms()
    video = heads.project_video(batch.video if video_input is None else video_input)
    zero = video["va"].sum() * 0.0
    nce = bridge = milnce = keep = zero
    if len(batch.audio_rows) > 0:
        audio = heads.project_audio(batch.audio)
        keys = batch.keys[batch.audio_rows]
        nce = _nce_term(video["va"][batch.audio_rows], audio["va"], keys, queues, temperature, gdt_shift)
        if extra.keep_audio > 0 and extra.parent is not None:
            keep = keep + extra.keep_audio * _keep_audio_term(audio["va"], extra.parent, batch)
        if extra.bridge > 0 and len(batch.audio_rows) > 1:
            pos_mask = related_mask(keys, keys, gdt_shift)
            bridge = symmetric_nce(video["vat"][batch.audio_rows].detach(), audio["vat"], temperature,
                                   pos_mask=pos_mask)
    if batch.text_mask.any():
        milnce = _milnce_term(video["vat"], heads.project_text(batch.text), batch, queues, temperature)
    if extra.keep > 0 and extra.parent is not None:
        keep = keep + extra.keep * _keep_term(video["vat"], extra.parent, batch)
    total = weights[0] * nce + weights[1] * milnce + extra.bridge * bridge + keep
    parts = {"nce": nce, "milnce": milnce, "bridge": bridge, "keep": keep}
    return StepLosses(total, {k: float(v.detach()) for k, v in parts.items()})


@torch.no_grad()
def push_momentum_embeddings(twin, batch: Batch, queues: dict[str, KeyedQueue],
                             video_input: torch.Tensor | None = None) -> None:
    """Embed the batch with the momentum heads and enqueue it (after the step, as in MoCo).
    In deep mode ``video_input`` is the online tail's output (the tail has no momentum copy: it
    moves slowly at its lower learning rate, and the heads' momentum keeps the queue consistent)."""
    if queues["video_va"].size == 0:
        return
    video_feats = batch.video if video_input is None else video_input
    if len(batch.audio_rows) > 0:
        video = twin.project_video(video_feats[batch.audio_rows])
        audio = twin.project_audio(batch.audio)
        keys = batch.keys[batch.audio_rows]
        queues["video_va"].push(video["va"], keys)
        queues["audio_va"].push(audio["va"], keys)
    if len(batch.text) > 0:
        text_keys = torch.stack([batch.text_ids, torch.zeros_like(batch.text_ids)], dim=1)
        queues["text_vat"].push(twin.project_text(batch.text), text_keys)


@register("mmv")
class MMVObjective:
    """MMV's FAC objective (NCE in S_va, MIL-NCE in S_vat) with the audio bridge and the keep
    terms; the settings come from the run's TrainConfig."""

    name = "mmv"

    def __init__(self, cfg, parent) -> None:
        self.weights, self.gdt_shift = cfg.weights, cfg.gdt_shift
        self.extra = ExtraTerms(cfg.bridge_weight, cfg.keep_weight, cfg.keep_audio_weight, parent)

    def make_queues(self, size: int, heads_cfg, device: torch.device) -> dict[str, KeyedQueue]:
        return make_queues(size, heads_cfg.va_dim, heads_cfg.vat_dim, device)

    def losses(self, heads, batch: Batch, queues, temperature, video_input=None) -> StepLosses:
        return step_losses(heads, batch, queues, temperature, self.weights, self.gdt_shift, self.extra,
                           video_input)

    def after_step(self, twin, batch: Batch, queues, video_input=None) -> None:
        push_momentum_embeddings(twin, batch, queues, video_input)
