import pytest

from engine.search.fusion import fuse_hits
from engine.search.moments import ClipHit, merge_hits


def hit(cid, vid, s, score, reason="seen"):
    return ClipHit(cid, vid, s, s + 4.0, score, reason)


def test_adjacent_hits_merge_into_one_moment_with_best_score():
    moments = merge_hits([hit(1, 1, 0, 0.5), hit(2, 1, 4, 0.9), hit(4, 1, 12, 0.3)], {1: "/a.mp4"})
    assert [(m.start, m.end) for m in moments] == [(0.0, 8.0), (12.0, 16.0)]
    assert moments[0].score == 0.9 and moments[0].best_clip_id == 2 and moments[0].best_time == 4.0
    assert moments[0].clip_ids == [1, 2]


def test_ranking_and_per_video_cap():
    hits = [hit(i, 1, 8 * i, 0.9 - 0.01 * i) for i in range(5)] + [hit(10, 2, 0, 0.5)]
    moments = merge_hits(hits, {1: "/a.mp4", 2: "/b.mp4"}, max_per_video=3)
    assert [m.video_id for m in moments] == [1, 1, 1, 2]


def test_fuse_keeps_best_channel_and_reasons():
    fused = fuse_hits([hit(1, 1, 0, 0.4, "seen"), hit(1, 1, 0, 0.7, "said")])
    assert len(fused) == 1 and fused[0].score == 0.7 and fused[0].reason == "said"
    mean = fuse_hits([hit(1, 1, 0, 0.4, "seen"), hit(1, 1, 0, 0.8, "heard"), hit(2, 1, 4, 0.6, "seen")], "mean")
    by_id = {h.clip_id: h.score for h in mean}
    assert by_id[1] == pytest.approx(0.6) and by_id[2] == pytest.approx(0.3)


def test_moment_lists_every_channel_that_matched():
    fused = fuse_hits([hit(1, 1, 0, 0.7, "seen"), hit(1, 1, 0, 0.65, "said")])
    moments = merge_hits(fused, {1: "/a.mp4"})
    assert moments[0].reasons == ["seen", "said"]


def test_weak_neighbours_do_not_stretch_a_strong_moment():
    # A sentence said at 4.9-7.6 s (strong) beside clips that match the query far worse.
    hits = [hit(1, 1, 0, -0.4), ClipHit(2, 1, 4.9, 7.6, 3.5, "said"), hit(3, 1, 5.4, -0.3),
            hit(4, 2, 0, 1.3), hit(5, 2, 4, 1.3), hit(6, 1, 20, -0.5), hit(7, 1, 24, -0.6)]
    moments = merge_hits(hits, {1: "/a.mp4", 2: "/b.mp4"})
    # clip 3 overlaps the sentence and is dropped; clip 1 (0-4 s) does not touch it and stays a
    # weak moment of its own, as do clips 6-7, merged.
    assert [(m.path, m.start, m.end) for m in moments] == [
        ("/a.mp4", 4.9, 7.6), ("/b.mp4", 0.0, 8.0), ("/a.mp4", 0.0, 4.0), ("/a.mp4", 20.0, 28.0)]


def test_words_that_contain_the_whole_query_are_always_a_reason():
    seen = hit(1, 1, 0, 2.2, "seen")
    heard = ClipHit(1, 1, 0.0, 10.0, 1.7, "heard", snippet="dog barking", exact=True)
    vague = ClipHit(1, 1, 0.0, 10.0, 1.7, "said", snippet="a puppy")
    fused = fuse_hits([seen, heard, vague])
    assert len(fused) == 1 and fused[0].reason == "seen"
    assert fused[0].also == ("heard",) and fused[0].snippet == "dog barking"


def _merge_every_video(hits, paths, gap=0.05, top_k=20, max_per_video=3, extend_within=2.0):
    """The reference: merge every video's hits into moments, sort them all, then cap (the merge
    before it stopped at the last video that can place a moment)."""
    import numpy as np

    from engine.search.moments import _runs, _to_moment, _touches

    spread = float(np.std([h.score for h in hits])) if len(hits) > 1 else 0.0
    by_video = {}
    for h in hits:
        by_video.setdefault(h.video_id, []).append(h)
    moments = []
    for video_id, vh in by_video.items():
        if video_id not in paths:
            continue
        floor = max(h.score for h in vh) - extend_within * spread
        strong = _runs([h for h in vh if h.score >= floor], gap)
        weak = [h for h in vh if h.score < floor and not any(_touches(h, run, gap) for run in strong)]
        moments += [_to_moment(run, paths[video_id]) for run in strong + _runs(weak, gap)]
    moments.sort(key=lambda m: -m.score)
    kept, per_video = [], {}
    for m in moments:
        if per_video.get(m.video_id, 0) < max_per_video:
            kept.append(m)
            per_video[m.video_id] = per_video.get(m.video_id, 0) + 1
        if len(kept) >= top_k:
            break
    return kept


@pytest.mark.parametrize("seed", range(6))
def test_merge_stops_early_but_equals_merging_every_video(seed):
    import random

    rng = random.Random(seed)
    levels = [round(rng.uniform(-1, 3), 1) for _ in range(8)]  # few distinct scores: many ties
    hits = [hit(i, rng.randrange(60), 4.0 * rng.randrange(30), rng.choice(levels) if seed % 2 else rng.gauss(0, 1))
            for i in range(600)]
    paths = {v: f"/{v}.mp4" for v in range(60) if v % 7}  # some videos gone
    for top_k, cap in ((20, 3), (40, 3), (5, 1), (1000, 3)):
        got = merge_hits(hits, paths, top_k=top_k, max_per_video=cap)
        want = _merge_every_video(hits, paths, top_k=top_k, max_per_video=cap)
        assert [(m.video_id, m.start, m.end, m.score, m.clip_ids) for m in got] == \
               [(m.video_id, m.start, m.end, m.score, m.clip_ids) for m in want]
