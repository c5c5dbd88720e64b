"""AVLnet-style audio-text term (Rouditchenko et al. 2021): a clip's sound and its weak text meet
directly in the coarse space S_vat, without going through the picture. AVLnet paired audio with
ASR-free captions; here the weak text of a clip is the sound captions ("heard", e.g. "(dog
barking)") around it, and the loss is AVLnet's Masked Margin Softmax (MMS, Ilharco et al. 2019)
in its multiple-instance form (a clip may have several captions, a caption several clips).

Shapes (A clips with sound, C captions gathered for the batch, D = S_vat width):
    audio    [A, D]  L2-normalised audio S_vat embeddings
    text     [C, D]  L2-normalised caption embeddings
    pos_mask [A, C]  bool, caption j is heard around clip i
With s = cosine and the margin delta subtracted from positive scores only:
    audio anchor i (P_i non-empty):
        -log( pos_i / (pos_i + sum_{j not in P_i} e^{s_ij/t}) ),  pos_i = sum_{j in P_i} e^{(s_ij - delta)/t}
    caption anchor j (Q_j = clips that heard it, non-empty): the same over clips i.
loss = mean of the audio-anchor mean and the caption-anchor mean; a zero (with graph) when no clip
has a caption.
"""

from __future__ import annotations

import torch

MASKED = -1.0e4  # finite stand-in for -inf (see nce.py)


def _direction(scores: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Mean over anchors (rows) with a positive of -log(positive mass / all mass); scores already margin-shifted."""
    rows = pos.any(dim=1)
    positives = torch.logsumexp(scores.masked_fill(~pos, MASKED), dim=1)
    return (torch.logsumexp(scores, dim=1) - positives)[rows].mean()


def audio_text_mms(audio: torch.Tensor, text: torch.Tensor, pos_mask: torch.Tensor,
                   temperature: float | torch.Tensor, margin: float = 0.001) -> torch.Tensor:
    """MIL Masked Margin Softmax between sounds and captions (scalar); see the module docstring."""
    if pos_mask.shape != (len(audio), len(text)):
        raise ValueError(f"pos_mask {tuple(pos_mask.shape)} must be [{len(audio)}, {len(text)}]")
    if not bool(pos_mask.any()):
        return audio.sum() * 0.0
    s = audio.float() @ text.float().T
    scores = (s - margin * pos_mask.float()) / temperature
    return 0.5 * (_direction(scores, pos_mask) + _direction(scores.T, pos_mask.T))
