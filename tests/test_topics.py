"""Topics: k-means and the silhouette criterion (against scikit-learn), distinctive naming, and
discovery on a small library database with planted groups."""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from engine.index import db as dbmod
from engine.models.prototypes import save_prototypes
from engine.topics import naming
from engine.topics.cli import add_commands, run_command
from engine.topics.cluster import cluster, kmeans, silhouette
from engine.topics.discover import discover_topics


def _blobs(k: int, per: int, dim: int = 16, spread: float = 0.15, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim))
    x = np.concatenate([c + spread * rng.normal(size=(per, dim)) for c in centres])
    return x.astype(np.float32), np.repeat(np.arange(k), per)


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = {(int(x), int(y)) for x, y in zip(a, b)}
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_kmeans_recovers_planted_groups_and_returns_unit_centroids():
    x, truth = _blobs(4, 25)
    labels, centroids = kmeans(x, 4, seed=1)
    assert _same_partition(labels, truth)
    assert np.allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-5)


def test_kmeans_keeps_k_clusters_even_with_duplicates():
    x = np.repeat(np.eye(3, dtype=np.float32), 4, axis=0)
    labels, _ = kmeans(x, 5, seed=0)
    assert len(np.unique(labels)) == 5


def test_silhouette_matches_scikit_learn_cosine():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    x, _ = _blobs(3, 12, spread=0.8, seed=2)
    labels = np.random.default_rng(3).integers(0, 3, len(x))
    labels[0] = 3  # a singleton cluster scores 0, as in scikit-learn
    expected = sklearn_metrics.silhouette_score(x, labels, metric="cosine")
    assert silhouette(x, labels) == pytest.approx(expected, abs=1e-5)


def test_cluster_chooses_the_planted_k_by_silhouette():
    x, truth = _blobs(5, 20, seed=4)
    result = cluster(x)
    assert result.k == 5 and _same_partition(result.labels, truth)
    assert max(result.silhouettes, key=result.silhouettes.get) == 5
    assert "silhouette" in result.criterion
    assert cluster(x, 3).k == 3


def test_distinctive_terms_prefer_over_represented_to_frequent():
    library = Counter({"music": 50, "dog barking": 6, "applause": 4})
    topic = Counter({"music": 5, "dog barking": 6})
    assert naming.distinctive(topic, library, 10, 100) == ["dog barking"]
    assert naming.caption_terms("(Dog Barking)") == {"dog barking"}
    assert naming.keyword_terms("The dog and the frisbee!") == {"dog", "frisbee"}


def test_top_classes_use_lift_over_the_library():
    names = ["web site", "golden retriever", "tabby"]
    library = np.array([0.6, 0.2, 0.2])
    topic = np.array([0.55, 0.4, 0.05])
    assert naming.top_classes(topic, library, names, top=1) == ["golden retriever"]


# ---- discovery on a planted library ----------------------------------------------------------
WORDS = ["kayak", "trumpet", "volcano"]


def plant_groups(db, model_id: str = "m1", groups: int = 3, videos_per: int = 2, clips_per: int = 5):
    """Fill a library database with clips that fall in ``groups`` groups (S_va vectors near a group
    centre; group g's videos 'heard' "(sound g)" and said WORDS[g]) -> (clip -> group, centres)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(groups, 8))
    vid, clip_id, truth = 0, 0, {}
    with dbmod.transaction(db) as conn:
        for g in range(groups):
            for _ in range(videos_per):
                vid += 1
                conn.execute("INSERT INTO videos (id, path, size, mtime, phash, status) VALUES (?,?,?,?,?, 'done')",
                             (vid, f"/media/group{g}_{vid}.mp4", 1, 0.0, f"h{vid}"))
                conn.execute("INSERT INTO transcripts (video_id, kind, start, end, text) VALUES (?, 'heard', 0, 99, ?)",
                             (vid, f"(sound {g})"))
                conn.execute("INSERT INTO transcripts (video_id, kind, start, end, text) VALUES (?, 'said', 0, 99, ?)",
                             (vid, f"the {WORDS[g]} again"))
                for i in range(clips_per):
                    clip_id += 1
                    truth[clip_id] = g
                    conn.execute("INSERT INTO clips (id, video_id, idx, start, end) VALUES (?,?,?,?,?)",
                                 (clip_id, vid, i, 4.0 * i, 4.0 * i + 4))
                    for modality in ("video", "audio"):
                        v = centres[g] + 0.1 * rng.normal(size=8)
                        v = (v / np.linalg.norm(v)).astype(np.float32)
                        conn.execute("INSERT INTO embeddings VALUES (?, ?, 'va', ?, ?)",
                                     (clip_id, model_id, modality, dbmod.to_blob(v)))
    return truth, centres


def _planted_library(tmp_path):
    db = dbmod.connect(tmp_path / "library.db")
    truth, centres = plant_groups(db)
    lib = SimpleNamespace(db=db, active_model_id="m1", paths=SimpleNamespace(models_dir=tmp_path / "models"))
    return lib, truth, centres


def test_discover_topics_finds_and_names_planted_groups(tmp_path):
    lib, truth, _ = _planted_library(tmp_path)
    result = discover_topics(lib)
    assert result.method == "k-means" and len(result.topics) == 3
    for t in result.topics:
        groups = {truth[c] for c in t.clip_ids}
        assert len(groups) == 1 and t.clips == 10 and t.videos == 2
        g = groups.pop()
        assert t.sounds == [f"sound {g}"] and t.words == [WORDS[g]]
        assert f"sound {g}" in t.name
        assert t.moments and all(f"group{g}_" in m.path for m in t.moments)
        # touching clips of one video merge into one moment
        assert max(m.end - m.start for m in t.moments) > 4.0
    assert sum(t.clips for t in result.topics) == result.clips == 30


def test_discover_topics_uses_swav_prototypes_when_the_model_has_them(tmp_path):
    lib, truth, centres = _planted_library(tmp_path)
    save_prototypes(lib.paths.models_dir, "m1", np.concatenate([centres, np.ones((1, 8))]))
    result = discover_topics(lib)
    assert result.method == "swav prototypes" and len(result.topics) == 3  # the empty prototype is dropped
    assert all(len({truth[c] for c in t.clip_ids}) == 1 for t in result.topics)
    assert discover_topics(lib, k=2).method == "k-means"  # an explicit k asks for k-means


def test_topics_cli_json(tmp_path, capsys):
    import argparse

    lib, _, _ = _planted_library(tmp_path)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_commands(sub)
    assert run_command(parser.parse_args(["topics", "--k", "2", "--json"]), lambda: lib) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["topics"]) == 2 and out["criterion"] == "k = 2 as asked"
    assert run_command(parser.parse_args(["topics"]), lambda: lib) == 0
    assert "3 topics over 30 clips" in capsys.readouterr().out


def test_topics_are_named_by_the_imagenet_classes_of_their_frames(tmp_path):
    """Stored frame features that point at one ImageNet class per group name the group's topic
    with that class (through the ConSE classifier)."""
    from engine.models.conse import imagenet_classes
    from engine.models.registry import imagenet_classifier

    lib, truth, _ = _planted_library(tmp_path)
    weight = imagenet_classifier()[0].numpy()
    classes = [207, 402, 980]  # golden retriever, acoustic guitar, volcano
    with dbmod.transaction(lib.db) as conn:
        for clip_id, g in truth.items():
            frame = 0.5 * weight[classes[g]] / np.linalg.norm(weight[classes[g]]) * 40
            conn.execute("INSERT INTO features (clip_id, backbone_id, n_frames, video) VALUES (?, 'b', 2, ?)",
                         (clip_id, dbmod.to_blob(np.stack([frame, frame]), "float16")))
    names = [lemmas.split(",")[0].strip() for _, lemmas, _ in imagenet_classes()]
    for t in discover_topics(lib).topics:
        g = truth[t.clip_ids[0]]
        assert t.classes[0] == names[classes[g]]
        assert t.name.startswith(names[classes[g]])
