"""The other self-supervised objectives of the MMV family, selectable by name (``--objective``).

Each keeps MMV's coarse-space terms (MIL-NCE between a clip's picture and the sentences around it
in S_vat, the audio bridge into S_vat and the keep terms) and replaces the video-audio loss in the
fine space S_va, so a comparison between them isolates that one choice:
  simclr   NT-Xent over the 2B video and audio embeddings (within-modality negatives too)
  barlow   Barlow Twins' cross-correlation loss (no negatives), divided by the width D so its
           scale matches the contrastive terms
  swav     swapped prediction of Sinkhorn-Knopp codes over learnable prototypes; the prototypes
           are saved with the model and group clips in the Topics view
  gdt      GDT's cross-modal contrast with time shift *invariant* (neighbouring clips of a video,
           up to ``gdt_shift`` apart, are positives: what ``--gdt-shift`` did), MoCo queue
  gdt-td   the same with time shift *distinctive* (neighbours are hard negatives)
and one that *adds* a term:
  avlnet   MMV plus AVLnet's audio-text Masked Margin Softmax in S_vat between a clip's sound and
           the sound captions ("heard") around it: sound meets text directly, not only via the picture.
Formulas and shapes are in ``engine/train/losses/``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from engine.models.prototypes import save_prototypes
from engine.train.data import Batch
from engine.train.losses import Prototypes, audio_text_mms, barlow_twins, gdt_loss, nt_xent, swav_loss
from engine.train.objective import MMVObjective, StepLosses, register

SWAV_PROTOTYPES = 32      # fewer than a CPU batch (64): Sinkhorn splits each batch evenly over them
SWAV_TEMPERATURE = 0.1    # SwAV's
MMS_MARGIN = 0.001        # AVLnet's


class _FineSpaceObjective(MMVObjective):
    """MMV's S_vat terms with another video-audio loss in S_va in place of NCE (weighted by the
    first of ``cfg.weights``)."""

    name = "fine-space"
    part = "va"

    def __init__(self, cfg, parent) -> None:
        super().__init__(cfg, parent)
        self.va_weight = cfg.weights[0]
        self.weights = (0.0, cfg.weights[1])   # MMV's NCE off; MIL-NCE as configured

    def va_loss(self, video: torch.Tensor, audio: torch.Tensor, batch: Batch, queues, temperature) -> torch.Tensor:
        raise NotImplementedError

    def losses(self, heads, batch: Batch, queues, temperature, video_input=None) -> StepLosses:
        base = super().losses(heads, batch, queues, temperature, video_input)
        parts = {k: v for k, v in base.parts.items() if k != "nce"}
        if len(batch.audio_rows) < 2:
            return StepLosses(base.total, {**parts, self.part: 0.0})
        video_feats = batch.video if video_input is None else video_input
        video = heads.project_video(video_feats[batch.audio_rows])["va"]
        audio = heads.project_audio(batch.audio)["va"]
        term = self.va_loss(video, audio, batch, queues, temperature)
        return StepLosses(base.total + self.va_weight * term, {**parts, self.part: float(term.detach())})


@register("simclr")
class SimCLRObjective(_FineSpaceObjective):
    name, part = "simclr", "ntxent"

    def va_loss(self, video, audio, batch, queues, temperature):
        return nt_xent(video, audio, temperature)


@register("barlow")
class BarlowObjective(_FineSpaceObjective):
    name, part = "barlow", "barlow"

    def va_loss(self, video, audio, batch, queues, temperature):
        return barlow_twins(video, audio) / video.shape[1]


@register("swav")
class SwAVObjective(_FineSpaceObjective):
    """SwAV; the prototypes are trainable parameters of the run (see ``parameters``), kept in
    the resume checkpoint and saved beside the published model."""

    name, part = "swav", "swav"

    def __init__(self, cfg, parent) -> None:
        super().__init__(cfg, parent)
        self.prototypes = Prototypes(SWAV_PROTOTYPES, parent.cfg.va_dim, seed=cfg.seed)

    def parameters(self) -> list[torch.nn.Parameter]:
        return list(self.prototypes.parameters())

    def to(self, device) -> SwAVObjective:
        self.prototypes.to(device)
        return self

    def state_dict(self) -> dict:
        return {"prototypes": self.prototypes.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.prototypes.load_state_dict(state["prototypes"])

    def publish(self, models_dir: Path, model_id: str) -> None:
        save_prototypes(models_dir, model_id, self.prototypes.weight.detach().float().cpu().numpy())

    def va_loss(self, video, audio, batch, queues, temperature):
        self.prototypes.to(video.device)
        return swav_loss(video, audio, self.prototypes, temperature=SWAV_TEMPERATURE)


@register("gdt")
class GDTObjective(_FineSpaceObjective):
    name, part, time_shift = "gdt", "gdt", "invariant"

    def __init__(self, cfg, parent) -> None:
        super().__init__(cfg, parent)
        self.shift = max(1, cfg.gdt_shift)
        self.gdt_shift = 0   # MMV's own NCE (weight 0) and bridge keep exact-clip positives

    def va_loss(self, video, audio, batch, queues, temperature):
        queued_video, queue_keys = queues["video_va"].contents()
        queued_audio, _ = queues["audio_va"].contents()
        return gdt_loss(video, audio, batch.keys[batch.audio_rows], temperature, shift=self.shift,
                        time_shift=self.time_shift, queue_video=queued_video, queue_audio=queued_audio,
                        queue_keys=queue_keys)


@register("gdt-td")
class GDTDistinctiveObjective(GDTObjective):
    name, part, time_shift = "gdt-td", "gdt", "distinctive"


@register("avlnet")
class AVLnetObjective(MMVObjective):
    """MMV plus the audio-text MMS term between a clip's S_vat sound and the captions heard
    around it (weighted like MIL-NCE)."""

    name = "avlnet"

    def losses(self, heads, batch: Batch, queues, temperature, video_input=None) -> StepLosses:
        base = super().losses(heads, batch, queues, temperature, video_input)
        heard = batch.text_heard if batch.text_heard is not None else torch.zeros(0, dtype=torch.bool)
        if len(batch.audio_rows) == 0 or not bool(heard.any()):
            return StepLosses(base.total, {**base.parts, "mms": 0.0})
        pos = batch.text_mask[batch.audio_rows][:, heard]
        audio = heads.project_audio(batch.audio)["vat"]
        captions = heads.project_text(batch.text[heard])
        term = audio_text_mms(audio, captions, pos, temperature, MMS_MARGIN)
        return StepLosses(base.total + self.weights[1] * term, {**base.parts, "mms": float(term.detach())})
