"""The contrastive losses against naive loop-based references (as lightly tests its losses)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from engine.train.losses import mil_nce, symmetric_nce


def _unit(n: int, d: int, seed: int) -> torch.Tensor:
    return F.normalize(
        torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dim=-1
    )


def _log_ratio(positives: list[float], candidates: list[float]) -> float:
    return -math.log(sum(math.exp(s) for s in positives) / sum(math.exp(s) for s in candidates))


def _naive_direction(q, k, pos, t, extra=None, extra_ok=None) -> float:
    total = 0.0
    for i in range(len(q)):
        scores = [float(q[i] @ k[j]) / t for j in range(len(k))]
        positives = [scores[j] for j in range(len(k)) if pos[i][j]]
        if extra is not None:
            scores += [float(q[i] @ extra[m]) / t for m in range(len(extra)) if extra_ok[i][m]]
        total += _log_ratio(positives, scores)
    return total / len(q)


def naive_nce(v, a, t, pos=None, qa=None, qv=None, ok=None) -> float:
    n = len(v)
    pos = pos if pos is not None else [[i == j for j in range(n)] for i in range(n)]
    pos_t = [[pos[j][i] for j in range(n)] for i in range(n)]
    return 0.5 * (_naive_direction(v, a, pos, t, qa, ok) + _naive_direction(a, v, pos_t, t, qv, ok))


def naive_milnce(v, s, pos, t, qt=None, ok=None) -> float:
    losses = []
    for i in range(len(v)):
        mine = [j for j in range(len(s)) if pos[i][j]]
        if not mine:
            continue
        candidates = [float(v[i] @ s[j]) / t for j in range(len(s))]
        for j in mine:
            candidates += [float(v[k] @ s[j]) / t for k in range(len(v)) if not pos[k][j]]
        if qt is not None:
            candidates += [float(v[i] @ qt[m]) / t for m in range(len(qt)) if ok[i][m]]
        losses.append(_log_ratio([float(v[i] @ s[j]) / t for j in mine], candidates))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("temperature", [0.07, 0.5])
def test_nce_matches_naive_plain(temperature):
    v, a = _unit(6, 8, 0), _unit(6, 8, 1)
    got = symmetric_nce(v, a, temperature)
    assert got.item() == pytest.approx(naive_nce(v, a, temperature), rel=1e-6)


def test_nce_equals_cross_entropy_with_identity_positives():
    v, a = _unit(5, 8, 2), _unit(5, 8, 3)
    logits = v @ a.T / 0.1
    target = torch.arange(5)
    expected = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    assert symmetric_nce(v, a, 0.1).item() == pytest.approx(expected.item(), rel=1e-6)


def test_nce_matches_naive_with_queue_mask_and_time_shift_positives():
    v, a = _unit(5, 8, 4), _unit(5, 8, 5)
    qa, qv = _unit(7, 8, 6), _unit(7, 8, 7)
    pos = torch.eye(5, dtype=torch.bool)
    pos[0, 1] = pos[1, 0] = True  # neighbouring clips of one video (GDT)
    ok = torch.rand(5, 7, generator=torch.Generator().manual_seed(8)) > 0.3
    ok[2] = False  # a row with every queue entry masked must still work
    got = symmetric_nce(v, a, 0.07, pos_mask=pos, audio_negatives=qa, video_negatives=qv, negatives_mask=ok)
    expected = naive_nce(v, a, 0.07, pos.tolist(), qa, qv, ok.tolist())
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_nce_is_low_for_aligned_pairs_and_high_for_shuffled():
    v = _unit(16, 32, 9)
    aligned = symmetric_nce(v, v, 0.07).item()
    shuffled = symmetric_nce(
        v, v[torch.randperm(16, generator=torch.Generator().manual_seed(0))], 0.07
    ).item()
    assert aligned < 0.1 < math.log(16) - 1 < shuffled


def test_milnce_matches_naive_with_shared_and_missing_sentences():
    v, s = _unit(4, 8, 10), _unit(6, 8, 11)
    pos = torch.zeros(4, 6, dtype=torch.bool)
    pos[0, [0, 1]] = True
    pos[1, [1, 2, 3]] = True  # sentence 1 is shared by clips 0 and 1
    pos[3, 5] = True  # clip 2 has no sentence; sentence 4 belongs to no clip in the batch
    assert mil_nce(v, s, pos, 0.07).item() == pytest.approx(naive_milnce(v, s, pos.tolist(), 0.07), rel=1e-6)


def test_milnce_matches_naive_with_text_queue():
    v, s, q = _unit(3, 8, 12), _unit(3, 8, 13), _unit(5, 8, 14)
    pos = torch.eye(3, dtype=torch.bool)
    ok = torch.ones(3, 5, dtype=torch.bool)
    ok[0, 0] = False
    got = mil_nce(v, s, pos, 0.2, text_negatives=q, negatives_mask=ok)
    assert got.item() == pytest.approx(naive_milnce(v, s, pos.tolist(), 0.2, q, ok.tolist()), rel=1e-6)


def test_milnce_without_sentences_is_zero_and_keeps_gradients_finite():
    v = _unit(3, 8, 15).requires_grad_(True)
    s = _unit(2, 8, 16)
    loss = mil_nce(v, s, torch.zeros(3, 2, dtype=torch.bool), 0.07)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(v.grad, torch.zeros_like(v))


def test_losses_have_finite_gradients_when_a_row_is_fully_masked():
    v = _unit(3, 8, 17).requires_grad_(True)
    s = _unit(3, 8, 18).requires_grad_(True)
    pos = torch.zeros(3, 3, dtype=torch.bool)
    pos[0] = True  # every sentence belongs to clip 0: no column has a video negative
    total = mil_nce(v, s, pos, 0.07) + symmetric_nce(
        v, s, 0.07, audio_negatives=s, video_negatives=v, negatives_mask=torch.zeros(3, 3, dtype=torch.bool)
    )
    total.backward()
    assert torch.isfinite(v.grad).all() and torch.isfinite(s.grad).all()
    assert v.grad.abs().sum() > 0


def test_nce_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        symmetric_nce(_unit(3, 8, 0), _unit(4, 8, 1), 0.07)
