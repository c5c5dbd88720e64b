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
