"""GDT (Patrick et al. 2021, "On compositions of transformations in contrastive self-supervised
learning"): a contrast whose positives and negatives are set by the transformations that link two
embeddings, here modality and time shift.

Every embedding is (clip, modality). Following GDT's audio-visual setting, pairs are formed only
across modalities (modality: *invariant*, a clip's picture and its sound are positives; within a
modality nothing is compared). Sampling (different videos) is always *distinctive*. Time shift,
clips of the same video at most ``shift`` positions apart, can be either:
  - invariant:   the shifted sound is a positive too (what ``--gdt-shift`` did before), or
  - distinctive: the shifted sound is a *hard negative* (only the same clip is positive), which
                 asks the model to tell this moment's sound from the same video's next moment.
Batches should hold time-shifted neighbours (``data.epoch_order(..., gdt_shift)``), else the
transformation rarely occurs inside a batch.

Shapes (B clips, K queued entries, D = S_va width):
    video, audio        [B, D]  L2-normalised; row i of each is clip keys[i]
    keys                [B, 2]  int64 (video_id, clip position)
    queue_video/_audio  [K, D]  momentum embeddings of earlier batches (MoCo), or None
    queue_keys          [K, 2]
For video anchor i:  loss_i = logsumexp(s(v_i, a_j) for all j, s(v_i, q_k) for allowed queued k)
                            - logsumexp(s(v_i, a_j) for positive j);  the same for audio anchors;
the result is the mean of the two directions. Queued copies of a positive are left out (never
negatives); under distinctive time shift the queued shifted neighbours stay in as negatives.
"""

from __future__ import annotations

import torch

from engine.train.losses.nce import symmetric_nce

INVARIANT, DISTINCTIVE = "invariant", "distinctive"


def positive_pairs(query_keys: torch.Tensor, other_keys: torch.Tensor, shift: int,
                   time_shift: str = INVARIANT) -> torch.Tensor:
    """[B, 2] x [K, 2] -> [B, K] bool: the pairs GDT's transformations make positives."""
    if time_shift not in (INVARIANT, DISTINCTIVE):
        raise ValueError(f"time_shift must be {INVARIANT!r} or {DISTINCTIVE!r}, not {time_shift!r}")
    reach = shift if time_shift == INVARIANT else 0
    same_video = query_keys[:, None, 0] == other_keys[None, :, 0]
    close = (query_keys[:, None, 1] - other_keys[None, :, 1]).abs() <= reach
    return same_video & close


def gdt_loss(video: torch.Tensor, audio: torch.Tensor, keys: torch.Tensor, temperature: float | torch.Tensor,
             *, shift: int = 1, time_shift: str = INVARIANT, queue_video: torch.Tensor | None = None,
             queue_audio: torch.Tensor | None = None, queue_keys: torch.Tensor | None = None) -> torch.Tensor:
    """GDT's cross-modal, transformation-aware contrast (scalar); see the module docstring."""
    pos = positive_pairs(keys, keys, shift, time_shift)
    allowed = None
    if queue_keys is not None and len(queue_keys) > 0:
        allowed = ~positive_pairs(keys, queue_keys, shift, time_shift)
    return symmetric_nce(video, audio, temperature, pos_mask=pos, audio_negatives=queue_audio,
                         video_negatives=queue_video, negatives_mask=allowed)
