"""The other MMV-family losses (SimCLR, Barlow Twins, SwAV, GDT, AVLnet MMS) against naive loop
implementations written straight from the papers' formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from engine.train.losses import (
    Prototypes,
    audio_text_mms,
    barlow_twins,
    gdt_loss,
    nt_xent,
    sinkhorn,
    swav_loss,
    symmetric_nce,
)


def _unit(n: int, d: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dim=-1)


def _neg_log_ratio(positives: list[float], candidates: list[float]) -> float:
    return -math.log(sum(math.exp(s) for s in positives) / sum(math.exp(s) for s in candidates))


# ---- SimCLR NT-Xent -------------------------------------------------------------------------
def naive_nt_xent(v, a, t) -> float:
    z = [*list(v), *list(a)]
    n = len(v)
    total = 0.0
    for k in range(2 * n):
        partner = k + n if k < n else k - n
        candidates = [float(z[k] @ z[m]) / t for m in range(2 * n) if m != k]
        total += _neg_log_ratio([float(z[k] @ z[partner]) / t], candidates)
    return total / (2 * n)


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_nt_xent_matches_naive(temperature):
    v, a = _unit(5, 8, 0), _unit(5, 8, 1)
    assert nt_xent(v, a, temperature).item() == pytest.approx(naive_nt_xent(v, a, temperature), rel=1e-6)


def test_nt_xent_is_low_for_aligned_views_and_high_for_shuffled():
    v = _unit(12, 32, 2)
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(3))
    assert nt_xent(v, v, 0.1).item() < 0.5 < math.log(23) - 1 < nt_xent(v, v[perm], 0.1).item()


# ---- Barlow Twins ---------------------------------------------------------------------------
def naive_barlow(a, b, lam) -> float:
    n, d = a.shape

    def standardise(x, col):
        values = [float(x[i, col]) for i in range(n)]
        mean = sum(values) / n
        std = math.sqrt(sum((u - mean) ** 2 for u in values) / n)
        return [(u - mean) / (std + 1e-5) for u in values]

    an = [standardise(a, c) for c in range(d)]
    bn = [standardise(b, c) for c in range(d)]
    loss = 0.0
    for i in range(d):
        for j in range(d):
            c = sum(an[i][k] * bn[j][k] for k in range(n)) / n
            loss += (1 - c) ** 2 if i == j else lam * c**2
    return loss


@pytest.mark.parametrize("lam", [None, 0.3])
def test_barlow_matches_naive(lam):
    a = torch.randn(7, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    b = torch.randn(7, 5, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    expected = naive_barlow(a, b, 1 / 5 if lam is None else lam)
    assert barlow_twins(a, b, lam).item() == pytest.approx(expected, rel=1e-5)


def test_barlow_is_near_zero_for_identical_decorrelated_views():
    # Orthogonal columns with zero mean: the views' correlation matrix is exactly the identity.
    raw = torch.randn(16, 4, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    x, _ = torch.linalg.qr(raw - raw.mean(dim=0))  # spans centred columns, so each column has mean 0
    assert barlow_twins(x, x).item() < 1e-3 < barlow_twins(x, torch.flip(x, [0])).item()


def test_barlow_rejects_a_single_row():
    with pytest.raises(ValueError):
        barlow_twins(torch.randn(1, 4), torch.randn(1, 4))


# ---- SwAV -----------------------------------------------------------------------------------
def naive_sinkhorn(scores, eps, iterations):
    b, k = len(scores), len(scores[0])
    top = max(max(row) for row in scores)
    q = [[math.exp((scores[i][p] - top) / eps) for i in range(b)] for p in range(k)]  # [K][B]
    total = sum(sum(row) for row in q)
    q = [[x / total for x in row] for row in q]
    for _ in range(iterations):
        q = [[x / sum(row) / k for x in row] for row in q]
        cols = [sum(q[p][i] for p in range(k)) for i in range(b)]
        q = [[q[p][i] / cols[i] / b for i in range(b)] for p in range(k)]
    return [[q[p][i] * b for p in range(k)] for i in range(b)]


def test_sinkhorn_matches_naive_and_balances_prototypes():
    scores = torch.randn(6, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64) * 0.3
    got = sinkhorn(scores, epsilon=0.05, iterations=3)
    expected = naive_sinkhorn(scores.tolist(), 0.05, 3)
    for i in range(6):
        assert got[i].tolist() == pytest.approx(expected[i], rel=1e-4, abs=1e-6)
    assert got.sum(dim=1).tolist() == pytest.approx([1.0] * 6, rel=1e-5)  # each clip's code is a distribution
    # run to convergence, each prototype holds B/K of the batch (SwAV's equal-partition constraint)
    converged = sinkhorn(scores, epsilon=0.05, iterations=200)
    assert converged.sum(dim=0).tolist() == pytest.approx([2.0] * 3, rel=1e-2)


def naive_swav(v, a, protos, t, eps, iterations) -> float:
    c = [F.normalize(p, dim=0) for p in protos]

    def scores(z):
        return [[float(z[i] @ c[p]) for p in range(len(c))] for i in range(len(z))]

    sv, sa = scores(v), scores(a)
    qv, qa = naive_sinkhorn(sv, eps, iterations), naive_sinkhorn(sa, eps, iterations)
    total = 0.0
    for i in range(len(v)):
        for s_pred, q_target in ((sv[i], qa[i]), (sa[i], qv[i])):
            norm = math.log(sum(math.exp(x / t) for x in s_pred))
            total -= sum(q_target[p] * (s_pred[p] / t - norm) for p in range(len(c)))
    return total / (2 * len(v))


def test_swav_matches_naive():
    v, a = _unit(6, 8, 8), _unit(6, 8, 9)
    protos = Prototypes(4, 8, seed=1).double()
    got = swav_loss(v, a, protos, temperature=0.1)
    expected = naive_swav(v, a, protos.weight.detach(), 0.1, 0.05, 3)
    assert got.item() == pytest.approx(expected, rel=1e-4)


def test_swav_trains_prototypes_and_codes_carry_no_gradient():
    v, a = _unit(8, 8, 10).float().requires_grad_(True), _unit(8, 8, 11).float()
    protos = Prototypes(4, 8)
    swav_loss(v, a, protos).backward()
    assert protos.weight.grad is not None and protos.weight.grad.abs().sum() > 0
    assert torch.isfinite(v.grad).all() and v.grad.abs().sum() > 0
    assert protos.assign(v.detach()).shape == (8,)


# ---- GDT ------------------------------------------------------------------------------------
def naive_gdt(v, a, keys, t, shift, mode, qv=None, qa=None, qkeys=None) -> float:
    reach = shift if mode == "invariant" else 0

    def positive(k1, k2):
        return k1[0] == k2[0] and abs(k1[1] - k2[1]) <= reach

    def direction(anchors, others, queue):
        total = 0.0
        for i in range(len(anchors)):
            scores = [float(anchors[i] @ others[j]) / t for j in range(len(others))]
            pos = [scores[j] for j in range(len(others)) if positive(keys[i], keys[j])]
            if queue is not None:
                scores += [float(anchors[i] @ queue[m]) / t for m in range(len(queue))
                           if not positive(keys[i], qkeys[m])]
            total += _neg_log_ratio(pos, scores)
        return total / len(anchors)

    return 0.5 * (direction(v, a, qa) + direction(a, v, qv))


@pytest.mark.parametrize("mode", ["invariant", "distinctive"])
def test_gdt_matches_naive_with_queue(mode):
    keys = torch.tensor([[1, 0], [1, 1], [1, 3], [2, 0], [2, 1]])
    qkeys = torch.tensor([[1, 2], [2, 0], [3, 5], [1, 0]])
    v, a, qv, qa = _unit(5, 8, 12), _unit(5, 8, 13), _unit(4, 8, 14), _unit(4, 8, 15)
    got = gdt_loss(v, a, keys, 0.07, shift=1, time_shift=mode, queue_video=qv, queue_audio=qa, queue_keys=qkeys)
    expected = naive_gdt(v, a, keys.tolist(), 0.07, 1, mode, qv, qa, qkeys.tolist())
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_gdt_distinctive_without_neighbours_is_plain_nce():
    keys = torch.tensor([[1, 0], [2, 0], [3, 0], [4, 0]])
    v, a = _unit(4, 8, 16), _unit(4, 8, 17)
    assert gdt_loss(v, a, keys, 0.1, time_shift="distinctive").item() == pytest.approx(
        symmetric_nce(v, a, 0.1).item(), rel=1e-9)


def test_gdt_time_shift_modes_differ_when_neighbours_are_present():
    keys = torch.tensor([[1, 0], [1, 1], [2, 0], [2, 1]])
    v, a = _unit(4, 8, 18), _unit(4, 8, 19)
    inv = gdt_loss(v, a, keys, 0.1, shift=1, time_shift="invariant").item()
    dis = gdt_loss(v, a, keys, 0.1, shift=1, time_shift="distinctive").item()
    assert inv < dis  # more positives, fewer negatives
    with pytest.raises(ValueError):
        gdt_loss(v, a, keys, 0.1, time_shift="sideways")


# ---- AVLnet MMS -----------------------------------------------------------------------------
def naive_mms(a, s, pos, t, margin) -> float:
    def score(i, j):
        return (float(a[i] @ s[j]) - (margin if pos[i][j] else 0.0)) / t

    audio_terms, caption_terms = [], []
    for i in range(len(a)):
        mine = [j for j in range(len(s)) if pos[i][j]]
        if mine:
            audio_terms.append(_neg_log_ratio([score(i, j) for j in mine], [score(i, j) for j in range(len(s))]))
    for j in range(len(s)):
        clips = [i for i in range(len(a)) if pos[i][j]]
        if clips:
            caption_terms.append(_neg_log_ratio([score(i, j) for i in clips], [score(i, j) for i in range(len(a))]))
    return 0.5 * (sum(audio_terms) / len(audio_terms) + sum(caption_terms) / len(caption_terms))


@pytest.mark.parametrize("margin", [0.0, 0.2])
def test_mms_matches_naive_with_shared_and_missing_captions(margin):
    a, s = _unit(4, 8, 20), _unit(5, 8, 21)
    pos = torch.zeros(4, 5, dtype=torch.bool)
    pos[0, [0, 1]] = True
    pos[1, 1] = True  # caption 1 heard around clips 0 and 1
    pos[3, 3] = True  # clip 2 has no caption, caption 4 no clip
    got = audio_text_mms(a, s, pos, 0.07, margin)
    assert got.item() == pytest.approx(naive_mms(a, s, pos.tolist(), 0.07, margin), rel=1e-6)


def test_mms_margin_raises_the_loss_and_no_caption_gives_zero_with_graph():
    a, s = _unit(3, 8, 22), _unit(3, 8, 23)
    pos = torch.eye(3, dtype=torch.bool)
    assert audio_text_mms(a, s, pos, 0.1, 0.3).item() > audio_text_mms(a, s, pos, 0.1, 0.0).item()
    x = a.clone().requires_grad_(True)
    zero = audio_text_mms(x, s, torch.zeros(3, 3, dtype=torch.bool), 0.1)
    zero.backward()
    assert zero.item() == 0.0 and torch.equal(x.grad, torch.zeros_like(x))
