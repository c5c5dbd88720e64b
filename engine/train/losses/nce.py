"""Symmetric InfoNCE between video and audio in the fine space S_va (MMV, eq. 1; CLIP-style).

Shapes (B clips in the batch, K extra negatives from a queue, D = 512 for S_va):
    video           [B, D]  L2-normalised video embeddings (positives of ``audio`` row by row)
    audio           [B, D]  L2-normalised audio embeddings
    pos_mask        [B, B]  bool, pos_mask[i, j]: video i and audio j are a positive pair.
                            Default: the identity. GDT-style time-shift positives set the entries
                            of neighbouring clips of the same video too. The diagonal must be True.
    audio_negatives [K, D]  extra audio negatives for the video -> audio direction (MoCo queue)
    video_negatives [K, D]  extra video negatives for the audio -> video direction
    negatives_mask  [B, K]  bool, True where queue entry k may serve as a negative for clip i
                            (False for stale copies of the clip itself or of its neighbours).

With several positives a row's loss is -log(sum_pos exp(s/t) / sum_all exp(s/t)), the MIL form,
which equals the usual cross-entropy when only the diagonal is positive. Returns a scalar: the mean
of the video -> audio and audio -> video directions.
"""

from __future__ import annotations

import torch

# A large finite negative, not -inf: a row or column with every entry masked would give
# logsumexp = -inf and NaN gradients (exp(-inf - -inf)); exp(-1e4) is exactly 0 in float32 anyway.
MASKED = -1.0e4


def _directional_nce(
    queries: torch.Tensor,
    keys: torch.Tensor,
    pos_mask: torch.Tensor,
    temperature,
    extra_keys: torch.Tensor | None,
    extra_mask: torch.Tensor | None,
) -> torch.Tensor:
    """Mean over rows of logsumexp(all candidates) - logsumexp(positives); shapes as in the module doc."""
    logits = queries @ keys.T / temperature  # [B, B]
    positives = logits.masked_fill(~pos_mask, MASKED)
    candidates = logits
    if extra_keys is not None and len(extra_keys) > 0:
        extra = queries @ extra_keys.T / temperature  # [B, K]
        if extra_mask is not None:
            extra = extra.masked_fill(~extra_mask, MASKED)
        candidates = torch.cat([logits, extra], dim=1)
    return (torch.logsumexp(candidates, dim=1) - torch.logsumexp(positives, dim=1)).mean()


def symmetric_nce(
    video: torch.Tensor,
    audio: torch.Tensor,
    temperature: float | torch.Tensor,
    *,
    pos_mask: torch.Tensor | None = None,
    audio_negatives: torch.Tensor | None = None,
    video_negatives: torch.Tensor | None = None,
    negatives_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE loss (scalar); see the module docstring for shapes."""
    if video.shape != audio.shape:
        raise ValueError(
            f"video {tuple(video.shape)} and audio {tuple(audio.shape)} must have the same shape"
        )
    if pos_mask is None:
        pos_mask = torch.eye(len(video), dtype=torch.bool, device=video.device)
    # Compute in float32 even under autocast: logsumexp over thousands of negatives at t=0.07
    # overflows half precision.
    video, audio = video.float(), audio.float()
    v2a = _directional_nce(
        video,
        audio,
        pos_mask,
        temperature,
        None if audio_negatives is None else audio_negatives.float(),
        negatives_mask,
    )
    a2v = _directional_nce(
        audio,
        video,
        pos_mask.T,
        temperature,
        None if video_negatives is None else video_negatives.float(),
        negatives_mask,
    )
    return 0.5 * (v2a + a2v)
