"""Topics: purity against the shared media's labels, and how long discovery takes.

    python bench/bench_topics.py [--library /tmp/mmv-bench-lib] [--synthetic 100000] [--k N]

Purity: every clip carries its video's MANIFEST label (used only for scoring); a topic's purity
is the share of its clips with its most common label, the overall figure the clip-weighted mean.
It is reported over all clips and over the clips of the report part of the fixed split, with a 95%
bootstrap interval (basic, clips resampled, topics fixed) and a random baseline: the same topic sizes
filled with randomly permuted labels (mean and 95% range of 1000 permutations). Purity rises with
the number of topics, which is why the baseline keeps the sizes.

Times: discovery on the shared-media library (torch already imported: the second of two calls),
and on a synthetic library of ``--synthetic`` clips (1024-d S_va vectors around 40 centres, no
transcripts) written to a temporary database. Raw numbers: bench/results/topics.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import MEDIA, save, videos
from bench.harness import load_splits
from engine.index import db as dbmod
from engine.topics.discover import discover_topics


def purity(assign: np.ndarray, labels: np.ndarray) -> float:
    total = 0
    for t in np.unique(assign):
        total += Counter(labels[assign == t].tolist()).most_common(1)[0][1]
    return total / len(labels)


def purity_report(assign: np.ndarray, labels: np.ndarray, seed: int = 0, rounds: int = 1000) -> dict:
    rng = np.random.default_rng(seed)
    value = purity(assign, labels)
    boot = [purity(assign[i], labels[i]) for i in (rng.integers(0, len(labels), len(labels)) for _ in range(rounds))]
    chance = [purity(assign, rng.permutation(labels)) for _ in range(rounds)]
    # Basic (reverse-percentile) interval: resampled clips duplicate members of small topics, which
    # inflates purity, so the plain percentile interval sits above the estimate; this one corrects it.
    low, high = 2 * value - np.percentile(boot, 97.5), 2 * value - np.percentile(boot, 2.5)
    return {"purity": round(value, 4), "low": round(float(max(low, 0.0)), 4), "high": round(float(min(high, 1.0)), 4),
            "interval": "basic bootstrap, clips resampled, 1000 rounds",
            "random": round(float(np.mean(chance)), 4),
            "random_low": round(float(np.percentile(chance, 2.5)), 4),
            "random_high": round(float(np.percentile(chance, 97.5)), 4),
            "clips": len(labels), "topics": len(np.unique(assign)), "labels": len(set(labels.tolist()))}


def shared_media(library: Path, k: int | None) -> dict:
    from engine.api import Library

    lib = Library(library)
    discover_topics(lib, k)  # first call: imports torch for the class names
    t0 = time.perf_counter()
    result = discover_topics(lib, k)
    seconds = time.perf_counter() - t0
    label_of = {str((MEDIA / v["path"]).resolve()): v["label"] for v in videos()}
    report_paths = {str((MEDIA / r.path).resolve()) for r in load_splits()["videos"] if r.split == "report"}
    paths = dict(lib.db.conn.execute("SELECT c.id, v.path FROM clips c JOIN videos v ON v.id = c.video_id"))
    clip_topic = {c: t.id for t in result.topics for c in t.clip_ids}
    rows = [(c, t, str(Path(paths[c]).resolve())) for c, t in clip_topic.items()]
    rows = [r for r in rows if r[2] in label_of]
    assign = np.array([t for _, t, _ in rows])
    labels = np.array([label_of[p] for _, _, p in rows])
    on_report = np.array([p in report_paths for _, _, p in rows])
    out = {"seconds": round(seconds, 3), "method": result.method, "criterion": result.criterion,
           "clips": result.clips, "model_id": result.model_id,
           "purity_all": purity_report(assign, labels),
           "purity_report_part": purity_report(assign[on_report], labels[on_report]),
           "topics": [{"name": t.name, "clips": t.clips, "videos": t.videos,
                       "labels": dict(Counter(labels[assign == t.id].tolist()).most_common())}
                      for t in result.topics]}
    lib.close()
    return out


def synthetic(n: int, dim: int = 1024, groups: int = 40, seed: int = 0) -> dict:
    """Discovery time on ``n`` synthetic clips (in a temporary library database)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(groups, dim)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        db = dbmod.connect(Path(tmp) / "library.db")
        t0 = time.perf_counter()
        per_video = 100
        with dbmod.transaction(db) as conn:
            for vid in range(n // per_video):
                conn.execute("INSERT INTO videos (id, path, size, mtime, phash, status) VALUES (?,?,1,0,?, 'done')",
                             (vid + 1, f"/synthetic/{vid}.mp4", str(vid)))
                g = rng.integers(groups, size=per_video)
                vecs = centres[g][:, None, :] + 0.8 * rng.normal(size=(per_video, 2, dim)).astype(np.float32)
                vecs /= np.linalg.norm(vecs, axis=2, keepdims=True)
                for i in range(per_video):
                    cid = vid * per_video + i + 1
                    conn.execute("INSERT INTO clips (id, video_id, idx, start, end) VALUES (?,?,?,?,?)",
                                 (cid, vid + 1, i, 4.0 * i, 4.0 * i + 4))
                    conn.executemany("INSERT INTO embeddings VALUES (?, 'm', 'va', ?, ?)",
                                     [(cid, m, dbmod.to_blob(vecs[i, j])) for j, m in enumerate(("video", "audio"))])
        write_s = time.perf_counter() - t0
        lib = SimpleNamespace(db=db, active_model_id="m", paths=SimpleNamespace(models_dir=Path(tmp) / "models"))
        t0 = time.perf_counter()
        result = discover_topics(lib)
        seconds = time.perf_counter() - t0
        db.conn.close()
    return {"clips": n, "seconds": round(seconds, 2), "topics": len(result.topics), "criterion": result.criterion,
            "planted_groups": groups, "write_seconds": round(write_s, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--library", type=Path, default=Path("/tmp/mmv-bench-lib"))
    ap.add_argument("--k", type=int, default=None)
    ap.add_argument("--synthetic", type=int, default=100_000, help="clips in the synthetic library (0: skip)")
    args = ap.parse_args()
    load = os.getloadavg()
    out = {"load_before": [round(x, 2) for x in load], "shared_media": shared_media(args.library, args.k)}
    pr = out["shared_media"]["purity_report_part"]
    print(f"shared media: {out['shared_media']['criterion']}; {out['shared_media']['seconds']:.2f} s; report-part "
          f"purity {pr['purity']:.2f} [{pr['low']:.2f}, {pr['high']:.2f}] (random {pr['random']:.2f})")
    if args.synthetic:
        out["synthetic"] = synthetic(args.synthetic)
        print(f"synthetic {args.synthetic} clips: {out['synthetic']['seconds']} s, {out['synthetic']['criterion']}")
    out["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(save("topics", out))


if __name__ == "__main__":
    main()
