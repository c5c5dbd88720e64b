"""A large library: build time, disk size, warm and cold text-query latency, HNSW recall, memory,
and the cost of adding one video to it.

    python bench/bench_million.py [--clips 1000000] [--library /tmp/mmvsearch-million] [--queries 200]

The library is filled through the project's own store code (engine.index.store.write_video, one
transaction per video, and engine.speech.store.save_segments for transcripts); the vectors are
synthetic but clustered like real ones: each video is near one of a few thousand "topics" in every
space, and its clips scatter around the video (clip-to-clip cosines of 0.6-0.9, as in the shared
media). Video files are empty placeholders (the searcher only checks that they exist), and the
backbone features are stored at their real size, so the disk figure is what a real library of
that size would use. The HNSW indexes are then built by engine.index.ann.open_index, as a first
search would.

Figures:
- build: writing the rows, then building the four HNSW indexes (each timed);
- warm text query, end to end through Library.search_text with the torch-free query model
  (MiniLM, heads, HNSW, hubness correction, transcripts, fetching the moment rows): p50 / p95;
- recall@10 of the S_vat video index against exact search, at the ef the searcher uses;
- a cold ``mmvsearch search --text`` (new process: open the library, answer the first query);
- adding one video: write_video, then open_index (which must repair incrementally, not rebuild).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import save
from engine.api import Library
from engine.index.ann import ef_for, index_path, open_index, save_index
from engine.index.db import transaction
from engine.index.store import VideoResult, write_video
from engine.models.config import get_config
from engine.speech.store import save_segments
from engine.speech.transcribe import Segment

CFG = get_config("mmv-base")
DIMS = {("va", "video"): CFG.va_dim, ("va", "audio"): CFG.va_dim, ("vat", "video"): CFG.vat_dim,
        ("vat", "audio"): CFG.vat_dim}
WORDS = ["dog", "cat", "car", "music", "drums", "beach", "city", "night", "rain", "crowd", "kitchen",
         "guitar", "football", "birthday", "snow", "river", "train", "market", "dance", "speech", "laugh",
         "engine", "garden", "bicycle", "fireworks", "baby", "piano"]
QUERIES = ["a dog on the beach", "fireworks at night", "someone playing the drums", "a crowded market",
           "a car driving in the rain", "people dancing at a party", "a baby laughing", "snow in the mountains"]


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


class Synth:
    """Clustered unit vectors: topic -> video (cosine ~0.8 to its topic) -> clips (~0.85 to the video)."""

    def __init__(self, seed: int, topics: int):
        self.rng = np.random.default_rng(seed)
        self.centres = {key: unit(self.rng.standard_normal((topics, dim))) for key, dim in DIMS.items()}
        self.text_centres = self.centres[("vat", "video")]

    def around(self, centre: np.ndarray, n: int, spread: float) -> np.ndarray:
        noise = self.rng.standard_normal((n, centre.shape[-1])) / np.sqrt(centre.shape[-1])
        return unit(centre + spread * noise)

    def video(self, n_clips: int) -> tuple[int, dict]:
        topic = int(self.rng.integers(len(self.text_centres)))
        emb = {key: self.around(self.around(c[topic][None], 1, 0.75)[0], n_clips, 0.6)
               for key, c in self.centres.items()}
        return topic, emb


def placeholder_files(root: Path, n: int) -> list[Path]:
    folder = root / "videos"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"v{i:07d}.mp4" for i in range(n)]
    for p in paths:
        p.touch()
    return paths


def register_videos(lib: Library, paths: list[Path]) -> list[int]:
    with transaction(lib.db) as conn:
        conn.executemany("INSERT INTO videos(path, size, mtime, phash, status, added_at) VALUES (?, 0, 0, ?, "
                         "'pending', 0)", [(str(p), f"synthetic-{i}") for i, p in enumerate(paths)])
        return [r[0] for r in conn.execute("SELECT id FROM videos ORDER BY id")]


def video_result(video_id: int, n_clips: int, emb: dict, features: bool) -> VideoResult:
    windows = [(4.0 * i, 4.0 * (i + 1)) for i in range(n_clips)]
    t = CFG.frames_per_clip if features else 1
    vfeat = np.zeros((n_clips, t, CFG.vision_dim if features else 1), np.float16)
    afeat = np.zeros((n_clips, CFG.audio_dim if features else 1), np.float16)
    info = {"duration": 4.0 * n_clips, "width": 1280, "height": 720, "fps": 30.0, "rotation": 0, "has_audio": True}
    return VideoResult(video_id, windows, vfeat, afeat, emb, info, segments=[])


class Vocabulary:
    """Words of the synthetic transcripts. ``small``: 8 of the 27 query-topic WORDS per sentence, so
    each query word is in ~26% of all segments (a worst case for exact-word matching: no real
    library says "dog" in a quarter of its sentences). ``zipf``: a 20,000-word vocabulary drawn
    by Zipf's law (p ~ 1/rank, as word frequencies in speech), with the WORDS at ranks 100-3,000,
    so a query word is in ~0.03-0.8% of segments, as in real speech."""

    SIZE = 20_000

    def __init__(self, kind: str, rng: np.random.Generator):
        self.kind, self.rng = kind, rng
        words = [f"w{r}" for r in range(self.SIZE)]
        for word, rank in zip(WORDS, np.geomspace(100, 3000, len(WORDS)).astype(int)):
            words[rank] = word
        self.words = np.array(words)
        p = 1.0 / np.arange(1, self.SIZE + 1)
        self.p = p / p.sum()

    def sentence(self, n: int = 8) -> str:
        if self.kind == "small":
            return " ".join(self.rng.choice(WORDS, size=n))
        return " ".join(self.words[self.rng.choice(self.SIZE, size=n, p=self.p)])


def segments_for(vocab: Vocabulary, n_clips: int) -> list[Segment]:
    return [Segment("said", 4.0 * i, 4.0 * i + 3.5, vocab.sentence())  # one spoken sentence every 20 s
            for i in range(0, n_clips, 5)]


def rewrite_transcripts(lib: Library, vocab: Vocabulary) -> dict:
    """New words for every transcript row of an existing library (ids and vectors kept, so no
    index changes); the FTS5 index follows through the table's update trigger."""
    t0 = time.perf_counter()
    ids = [r[0] for r in lib.db.conn.execute("SELECT id FROM transcripts ORDER BY id")]
    for start in range(0, len(ids), 20_000):
        with transaction(lib.db) as conn:
            conn.executemany("UPDATE transcripts SET text = ?, words = '[]' WHERE id = ?",
                             [(vocab.sentence(), i) for i in ids[start:start + 20_000]])
    return {"rows": len(ids), "vocabulary": vocab.kind, "s": time.perf_counter() - t0}


def fill(lib: Library, args, synth: Synth, vocab: Vocabulary) -> dict:
    n_videos = args.clips // args.clips_per_video
    paths = placeholder_files(lib.paths.root, n_videos)
    ids = register_videos(lib, paths)
    model_id = lib.active_model_id
    t0, c0 = time.perf_counter(), cpu_s()
    for k, video_id in enumerate(ids):
        topic, emb = synth.video(args.clips_per_video)
        result = video_result(video_id, args.clips_per_video, emb, not args.no_features)
        result.segments = segments_for(vocab, args.clips_per_video)
        embed = lambda texts, c=synth.text_centres[topic]: synth.around(c, len(texts), 0.8)
        write_video(lib, result, model_id, CFG.backbone_id, 4.0,
                    lambda conn, vid, segs, e=embed: save_segments(conn, vid, segs, e))
        if k % 2000 == 0:
            print(f"[fill] {k}/{n_videos} videos, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return {"videos": n_videos, "write_s": time.perf_counter() - t0, "write_cpu_s": cpu_s() - c0}


def build_indexes(lib: Library, wanted: list[tuple[str, str]]) -> dict:
    out = {}
    for (space, modality), dim in DIMS.items():
        if (space, modality) not in wanted:
            continue
        t0, c0 = time.perf_counter(), cpu_s()
        index = open_index(lib.db.conn, lib.paths.ann_dir, lib.active_model_id, space, modality, dim)
        out[f"{space}_{modality}"] = {"s": time.perf_counter() - t0, "cpu_s": cpu_s() - c0, "n": index.live_count}
        print(f"[hnsw] {space}_{modality}: {out[f'{space}_{modality}']}", file=sys.stderr, flush=True)
    return out


def disk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def warm_queries(lib: Library, n: int) -> dict:
    lib.search_text(QUERIES[0], 10)  # opens the indexes and loads the text tower
    times, cpus = [], []
    for i in range(n):
        t0, c0 = time.perf_counter(), cpu_s()
        result = lib.search_text(QUERIES[i % len(QUERIES)] + ("" if i < len(QUERIES) else f" {i}"), 10)
        times.append(time.perf_counter() - t0)
        cpus.append(cpu_s() - c0)
        assert result.moments, "a query over a full library found nothing"
    q = lambda xs, p: float(np.percentile(xs, p) * 1000)
    return {"queries": n, "p50_ms": q(times, 50), "p95_ms": q(times, 95), "cpu_p50_ms": q(cpus, 50),
            "cpu_p95_ms": q(cpus, 95)}


def recall_at_10(lib: Library, n: int, seed: int) -> dict:
    """S_vat video: HNSW top 10 (queried for the searcher's 300 candidates, and for 10) vs exact."""
    from engine.index.ann import db_vectors
    from engine.search.sources import CANDIDATES

    index = open_index(lib.db.conn, lib.paths.ann_dir, lib.active_model_id, "vat", "video", CFG.vat_dim)
    ids, vecs = db_vectors(lib.db.conn, lib.active_model_id, "vat", "video")
    rng = np.random.default_rng(seed)
    queries = unit(vecs[rng.integers(len(vecs), size=n)] + 0.7 * rng.standard_normal((n, vecs.shape[1])) / 20)
    out = {}
    for k in (CANDIDATES, 10):
        hits = []
        for q in queries:
            exact = ids[np.argpartition(-(vecs @ q), 10)[:10]]
            got = index.query(q, k)[0][:10]
            hits.append(len(set(exact.tolist()) & set(got.tolist())) / 10)
        boot = [np.mean(rng.choice(hits, len(hits))) for _ in range(1000)]
        out[f"k{k}"] = {"recall_at_10": float(np.mean(hits)), "ci95": [float(np.percentile(boot, 2.5)),
                                                                      float(np.percentile(boot, 97.5))],
                        "ef": ef_for(k)}
    out["random_baseline"] = 10 / len(ids)
    out["queries"] = n
    return out


def segment_index_figures(lib: Library, n: int, seed: int) -> dict:
    """The transcripts' HNSW index (engine.speech.segment_index): building it from SQLite (the
    first search after the library passed EXACT_MAX segments, or after an upgrade), and recall@10
    of its 300 nearest against the exact product over every segment vector."""
    from engine.speech.segment_index import TEXT_DIR, SegmentIndex
    from engine.speech.store import _load_segment_vectors

    shutil.rmtree(lib.paths.ann_dir / TEXT_DIR, ignore_errors=True)
    t0, c0 = time.perf_counter(), cpu_s()
    index = SegmentIndex(lib.paths.ann_dir, "transcripts", CFG.text_dim)
    index.sync(lib.db.conn)
    built = {"s": time.perf_counter() - t0, "cpu_s": cpu_s() - c0, "n": len(index.index), "load": os.getloadavg()}
    ids, vecs = _load_segment_vectors(lib.db.conn, CFG.text_dim, "transcripts")
    rng = np.random.default_rng(seed)
    queries = unit(vecs[rng.integers(len(vecs), size=n)] + 0.7 * rng.standard_normal((n, vecs.shape[1])) / 20)
    hits = []
    for q in queries:
        exact = ids[np.argpartition(-(vecs @ q), 10)[:10]]
        hits.append(len(set(exact.tolist()) & set(index.query(q, 300)[0][:10].tolist())) / 10)
    boot = [np.mean(rng.choice(hits, len(hits))) for _ in range(1000)]
    return {"build": built, "recall_at_10": float(np.mean(hits)), "queries": n, "ef": ef_for(300),
            "ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
            "random_baseline": 10 / len(ids)}


def cold_cli(root: Path, runs: int) -> dict:
    walls, cpus = [], []
    for i in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "engine.cli", "--library", str(root), "search", "--text",
                              QUERIES[i % len(QUERIES)], "--top", "5"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parents[1])
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        if res.returncode != 0:
            raise SystemExit(res.stderr)
    return {"wall_s": walls, "cpu_s": cpus, "median_wall_s": statistics.median(walls),
            "median_cpu_s": statistics.median(cpus)}


def add_one_video(lib: Library, args, synth: Synth, wanted: list[tuple[str, str]]) -> dict:
    """A new video in a separate step (as a later `mmvsearch index` run): the indexes must follow
    incrementally (engine.index.ann repairs by generation), not rebuild."""
    tag = time.strftime("%Y%m%d-%H%M%S")  # a later --reuse run adds another video, not the same path
    path = placeholder_files(lib.paths.root / f"added-{tag}", 1)[0]
    video_id = register_videos(lib, [path])[-1]
    t0 = time.perf_counter()
    _topic, emb = synth.video(args.clips_per_video)
    write_video(lib, video_result(video_id, args.clips_per_video, emb, True), lib.active_model_id,
                CFG.backbone_id, 4.0)
    write_s = time.perf_counter() - t0
    records = _capture_warnings()
    t1 = time.perf_counter()
    sizes, files = {}, {}
    for (space, modality), dim in DIMS.items():
        if (space, modality) not in wanted:
            continue
        path = index_path(lib.paths.ann_dir, lib.active_model_id, space, modality)
        before = json.loads(path.read_text())
        t2 = time.perf_counter()
        index = open_index(lib.db.conn, lib.paths.ann_dir, lib.active_model_id, space, modality, dim)
        after = json.loads(path.read_text())
        sizes[f"{space}_{modality}"] = index.live_count
        files[f"{space}_{modality}"] = {"open_repair_save_s": time.perf_counter() - t2,
                                        "base_rewritten": after["data"] != before["data"],
                                        "base_bytes": after["size"], "delta_bytes": after.get("delta_size", 0)}
    rebuilt = [r for r in records if "rebuilding" in r]
    t3 = time.perf_counter()
    save_t = {}
    for key in files:  # the save alone, as an indexer holding the open index pays it
        space, modality = key.split("_")
        dim = DIMS[(space, modality)]
        index = open_index(lib.db.conn, lib.paths.ann_dir, lib.active_model_id, space, modality, dim)
        vid = register_videos(lib, [placeholder_files(lib.paths.root / f"added-{tag}-{key}", 1)[0]])[-1]
        _topic, emb = synth.video(args.clips_per_video)
        written = write_video(lib, video_result(vid, args.clips_per_video, emb, True), lib.active_model_id,
                              CFG.backbone_id, 4.0)
        index.follow(written.removed_ids, np.asarray(written.clip_ids, np.int64), emb[(space, modality)],
                     written.gen_before, written.gen_after)
        t4 = time.perf_counter()
        save_index(lib.db.conn, index, index_path(lib.paths.ann_dir, lib.active_model_id, space, modality),
                   lib.active_model_id, space, modality)
        save_t[key] = time.perf_counter() - t4
    return {"write_s": write_s, "indexes_follow_s": t3 - t1, "total_s": t3 - t0, "per_index": files,
            "save_after_follow_s": save_t, "rebuilt": rebuilt, "index_sizes_after": sizes}


def _capture_warnings() -> list[str]:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logging.getLogger("engine.index.ann").addHandler(Keep(level=logging.INFO))
    logging.getLogger("engine.index.ann").setLevel(logging.INFO)
    return records


def record(lib: Library, name: str, value: dict | None = None) -> dict:
    """Figures of an earlier phase (fill, HNSW build) kept in the library, so a --reuse run reports them."""
    path = lib.paths.root / "bench_million_record.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    if value is not None:
        data[name] = value
        path.write_text(json.dumps(data, indent=1))
    return data.get(name, {})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=1_000_000)
    ap.add_argument("--clips-per-video", type=int, default=50)
    ap.add_argument("--library", type=Path, default=Path("/tmp/mmvsearch-million"))
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--recall-queries", type=int, default=200)
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--no-features", action="store_true", help="store 1-d placeholder backbone features")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reuse", action="store_true", help="query an existing library (skip filling)")
    ap.add_argument("--fill-only", action="store_true", help="fill the library's rows and stop (then --reuse)")
    ap.add_argument("--indexes", default=",".join(f"{s}_{m}" for s, m in DIMS),
                    help="HNSW indexes to build (a text query with the base model reads only vat_video)")
    ap.add_argument("--vocabulary", choices=("zipf", "small"), default="zipf",
                    help="words of the synthetic transcripts (see Vocabulary)")
    ap.add_argument("--rewrite-transcripts", action="store_true",
                    help="with --reuse: give every transcript row new words from --vocabulary")
    args = ap.parse_args()
    if args.library.exists() and not args.reuse:
        shutil.rmtree(args.library)
    load = [os.getloadavg()]
    synth = Synth(args.seed, topics=max(100, args.clips // 500))
    vocab = Vocabulary(args.vocabulary, np.random.default_rng(args.seed + 1))
    lib = Library(args.library, device="cpu")
    out: dict = {"clips": args.clips, "clips_per_video": args.clips_per_video, "features_stored": not args.no_features}
    if not args.reuse:
        record(lib, "fill", {**fill(lib, args, synth, vocab), "load_before_after": [load[0], os.getloadavg()],
                             "vocabulary": args.vocabulary})
    elif args.rewrite_transcripts:
        record(lib, "transcripts", rewrite_transcripts(lib, vocab))
    out["fill"] = record(lib, "fill")
    out["transcripts"] = record(lib, "transcripts") or {"vocabulary": out["fill"].get("vocabulary", "small")}
    if args.fill_only:
        return
    wanted = [tuple(name.split("_")) for name in args.indexes.split(",")]
    built = record(lib, "hnsw_build")
    opened = build_indexes(lib, wanted)
    record(lib, "hnsw_build", {**built, **{k: {**v, "load": os.getloadavg()} for k, v in opened.items()
                                           if k not in built}})
    out["hnsw_build"] = record(lib, "hnsw_build")  # the first open of each index built it
    out["hnsw_open_s"] = opened
    if out["fill"]:
        out["build_s"] = out["fill"]["write_s"] + sum(v["s"] for v in out["hnsw_build"].values())
    out["disk_bytes"] = disk_bytes(args.library)
    lib.close()
    # The first search of a library exports the query heads (with torch, once); the figures below
    # are the torch-free query path that every later search takes.
    lib = Library(args.library, device="cpu")
    out["segment_index"] = segment_index_figures(lib, args.recall_queries, args.seed)
    lib.close()
    cold_cli(args.library, 1)
    lib = Library(args.library, device="cpu")
    load.append(os.getloadavg())
    out["warm_text_query"] = warm_queries(lib, args.queries)
    out["query_model"] = type(lib.searcher().model).__name__
    out["peak_rss_searching_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["recall"] = recall_at_10(lib, args.recall_queries, args.seed)
    out["peak_rss_with_exact_search_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lib.close()
    out["cold_cli_first_query"] = cold_cli(args.library, args.cold_runs)
    lib = Library(args.library, device="cpu")
    out["add_one_video"] = add_one_video(lib, args, synth, wanted)
    lib.close()
    load.append(os.getloadavg())
    out["load_average_1_5_15"] = [list(map(float, x)) for x in load]
    name = "million" if args.clips == 1_000_000 else f"million_at_{args.clips}"
    print(save(name, out))
    print({k: v for k, v in out.items() if k != "hnsw_build"})


if __name__ == "__main__":
    main()
