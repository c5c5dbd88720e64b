"""NT-Xent (SimCLR, Chen et al. 2020) with a clip's video and audio as its two views.

Shapes (B clips, D = S_va width):
    video [B, D]  L2-normalised video embeddings
    audio [B, D]  L2-normalised audio embeddings; row i is the other view of video row i

The 2B embeddings z = [video; audio] are compared all against all (cosine / temperature). For
each anchor the positive is the other view of the same clip and the candidates are every other
embedding, *including the same modality* (which is what sets NT-Xent apart from the cross-modal
NCE of MMV: video is also pushed away from other clips' video):
    loss = mean over the 2B anchors k of  -log( exp(s(z_k, z_pos(k))) / sum_{m != k} exp(s(z_k, z_m)) )
"""

from __future__ import annotations

import torch


def nt_xent(video: torch.Tensor, audio: torch.Tensor, temperature: float | torch.Tensor) -> torch.Tensor:
    """NT-Xent loss (scalar) between the two views; see the module docstring."""
    if video.shape != audio.shape:
        raise ValueError(f"video {tuple(video.shape)} and audio {tuple(audio.shape)} must have the same shape")
    n = len(video)
    z = torch.cat([video.float(), audio.float()])  # float32 even under autocast (see nce.py)
    logits = z @ z.T / temperature  # [2B, 2B]
    self_pairs = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_pairs, float("-inf"))  # an anchor is never its own candidate
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return torch.nn.functional.cross_entropy(logits, partner)
