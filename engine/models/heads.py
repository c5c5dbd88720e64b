"""FAC projection heads: the trainable part of the MMV model.

Shapes (N clips, T frames per clip):
    project_video(vfeat [N, T, 1280]) -> {"va": [N, 1024], "vat": [N, 384]}
    project_audio(afeat [N, >=384])   -> {"va": [N, 1024], "vat": [N, 384]}  (stored 768-d features,
                                         or a query's Whisper mean (+ std); the heads read the mean)
    project_text(tfeat [N, 384])      -> [N, 384]  (vat)
All outputs are L2-normalised.

Initialisation is chosen so that the untrained model already works and training only improves it:
- ``va`` heads are semi-orthogonal projections (seeded), which keep cosine similarities of the
  backbone features, so sound-alike and look-alike search work before any training (the 384-d
  audio input goes into 1024-d exactly: cosines of the centred Whisper means are preserved);
- the audio input is the Whisper encoder's frame mean minus a fixed centre shipped with the model
  (engine.models.audio.load_audio_centre): the same for a query and for a clip, whatever the library;
- video ``vat`` is the ConSE bridge plus a zero-initialised residual from ``va`` (FAC: the coarse
  space is reached through the fine one), so out of the box it *is* ConSE;
- the text head is the identity on MiniLM features;
- the temporal module is attention pooling with zero weights, i.e. a mean over frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.config import ModelConfig
from engine.models.conse import conse_embed


def _semi_orthogonal(out_dim: int, in_dim: int, generator: torch.Generator) -> torch.Tensor:
    a = torch.randn(max(out_dim, in_dim), min(out_dim, in_dim), generator=generator)
    q, _ = torch.linalg.qr(a)
    return q if out_dim >= in_dim else q.T


class TemporalPool(nn.Module):
    """Attention pooling over frames; zero-initialised scores make it a mean at first."""

    def __init__(self, dim: int):
        super().__init__()
        self.score = nn.Linear(dim, 1)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, T, D] -> [N, D]
        w = torch.softmax(self.score(x).squeeze(-1), dim=1)
        return (w.unsqueeze(-1) * x).sum(dim=1)


class FACHeads(nn.Module):
    def __init__(self, cfg: ModelConfig, classifier_weight: torch.Tensor, classifier_bias: torch.Tensor,
                 class_text: torch.Tensor, audio_centre: torch.Tensor | None = None):
        super().__init__()
        self.cfg = cfg
        g = torch.Generator().manual_seed(cfg.seed)
        self.temporal = TemporalPool(cfg.vision_dim)
        self.video_va = nn.Linear(cfg.vision_dim, cfg.va_dim, bias=False)
        self.audio_va = nn.Linear(cfg.audio_head_dim, cfg.va_dim, bias=False)
        self.video_va.weight.data.copy_(_semi_orthogonal(cfg.va_dim, cfg.vision_dim, g))
        self.audio_va.weight.data.copy_(_semi_orthogonal(cfg.va_dim, cfg.audio_head_dim, g))
        # Feature centres: subtracting the mean removes the component every clip shares, which
        # otherwise dominates cosine similarity. Video: zero until calibrated on a library. Audio:
        # the fixed centre of the config (part of the packaged model, saved with fine-tuned heads).
        self.register_buffer("video_center", torch.zeros(cfg.vision_dim))
        self.register_buffer("audio_center", audio_centre.detach().clone().float() if audio_centre is not None
                             else torch.zeros(cfg.audio_head_dim))
        self.video_va_to_vat = nn.Linear(cfg.va_dim, cfg.vat_dim)
        nn.init.zeros_(self.video_va_to_vat.weight)
        nn.init.zeros_(self.video_va_to_vat.bias)
        self.audio_va_to_vat = nn.Linear(cfg.va_dim, cfg.vat_dim)
        self.audio_va_to_vat.weight.data.copy_(_semi_orthogonal(cfg.vat_dim, cfg.va_dim, g))
        nn.init.zeros_(self.audio_va_to_vat.bias)
        self.text_vat = nn.Linear(cfg.text_dim, cfg.vat_dim)
        nn.init.eye_(self.text_vat.weight)
        nn.init.zeros_(self.text_vat.bias)
        # Learnable log-temperature of the contrastive losses (MMV: 0.07).
        self.log_temperature = nn.Parameter(torch.tensor(float(cfg.temperature)).log())
        # Fixed ImageNet classifier and class-name embeddings for the ConSE bridge.
        self.register_buffer("classifier_weight", classifier_weight.detach().clone().float())
        self.register_buffer("classifier_bias", classifier_bias.detach().clone().float())
        self.register_buffer("class_text", class_text.detach().clone().float())

    def conse(self, vfeat: torch.Tensor) -> torch.Tensor:
        """[N, T, 1280] -> [N, 384]: per-frame ConSE embeddings averaged over frames."""
        logits = F.linear(vfeat, self.classifier_weight, self.classifier_bias)
        return F.normalize(conse_embed(logits, self.class_text, self.cfg.conse_topk).mean(dim=1), dim=-1)

    def project_video(self, vfeat: torch.Tensor) -> dict[str, torch.Tensor]:
        vfeat = vfeat.float()
        pooled = self.temporal(vfeat) - self.video_center
        va = F.normalize(self.video_va(pooled), dim=-1)
        vat = F.normalize(self.conse(vfeat) + self.video_va_to_vat(va), dim=-1)
        return {"va": va, "vat": vat}

    def audio_input(self, afeat: torch.Tensor) -> torch.Tensor:
        """The Whisper frame mean (the first values of a stored or query feature), centred, unit length."""
        return F.normalize(afeat[..., : self.cfg.audio_head_dim].float() - self.audio_center, dim=-1)

    def project_audio(self, afeat: torch.Tensor) -> dict[str, torch.Tensor]:
        va = F.normalize(self.audio_va(self.audio_input(afeat)), dim=-1)
        return {"va": va, "vat": F.normalize(self.audio_va_to_vat(va), dim=-1)}

    def project_text(self, tfeat: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_vat(tfeat.float()), dim=-1)
