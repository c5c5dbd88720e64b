"""MIL-NCE (Miech et al., CVPR 2020) between a clip's video and the narration sentences around it,
in the coarse space S_vat (MMV: video-text loss). Several sentences can be positives of one clip.

Shapes (B clips, S sentences gathered for the batch, K queued text negatives, D = 384 for S_vat):
    video          [B, D]  L2-normalised video embeddings
    text           [S, D]  L2-normalised sentence embeddings
    pos_mask       [B, S]  bool, pos_mask[i, j]: sentence j overlaps (the window around) clip i
    text_negatives [K, D]  extra sentence negatives for the video -> text direction (MoCo queue)
    negatives_mask [B, K]  bool, True where queued sentence k may serve as a negative for clip i

For a clip i with positives P_i (s = cosine / temperature):
    loss_i = logsumexp( {s(v_i, t_j) for every sentence j}                      video -> texts
                      U {s(v_k, t_j) for j in P_i, every clip k with j not in P_k}  text -> videos
                      U {s(v_i, q_k) for every allowed queued sentence k} )
           - logsumexp( {s(v_i, t_j) for j in P_i} )
i.e. the positives compete, as a bag, against the negatives of both directions; each positive pair
is counted once. Clips with no sentence (P_i empty) contribute nothing; the result is the mean over
the clips that have one, or a zero that keeps the graph when none has.
"""

from __future__ import annotations

import torch

# A large finite negative, not -inf: a row or column with every entry masked would give
# logsumexp = -inf and NaN gradients (exp(-inf - -inf)); exp(-1e4) is exactly 0 in float32 anyway.
MASKED = -1.0e4


def mil_nce(
    video: torch.Tensor,
    text: torch.Tensor,
    pos_mask: torch.Tensor,
    temperature: float | torch.Tensor,
    *,
    text_negatives: torch.Tensor | None = None,
    negatives_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """MIL-NCE loss (scalar); see the module docstring for shapes and the exact candidate set."""
    if pos_mask.shape != (len(video), len(text)):
        raise ValueError(f"pos_mask {tuple(pos_mask.shape)} must be [{len(video)}, {len(text)}]")
    has_text = pos_mask.any(dim=1)
    if not bool(has_text.any()):
        return video.sum() * 0.0
    video, text = video.float(), text.float()  # float32: see nce.py
    scores = video @ text.T / temperature  # [B, S]
    positives = torch.logsumexp(scores.masked_fill(~pos_mask, MASKED), dim=1)  # [B]
    row_candidates = [scores]
    if text_negatives is not None and len(text_negatives) > 0:
        extra = video @ text_negatives.float().T / temperature  # [B, K]
        if negatives_mask is not None:
            extra = extra.masked_fill(~negatives_mask, MASKED)
        row_candidates.append(extra)
    # Text -> video negatives: for each sentence, the clips it is not a positive of.
    column_negatives = torch.logsumexp(scores.masked_fill(pos_mask, MASKED), dim=0)  # [S]
    per_clip_columns = column_negatives.unsqueeze(0).masked_fill(~pos_mask, MASKED)  # [B, S]
    candidates = torch.cat([*row_candidates, per_clip_columns], dim=1)
    losses = torch.logsumexp(candidates, dim=1) - positives
    return losses[has_text].mean()
