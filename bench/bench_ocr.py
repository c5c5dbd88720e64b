"""On-screen text (OCR): engine choice, word recall / precision on generated text, retrieval with
reason 'read', OCR cost as a share of indexing, query latency, and what is read in the shared media.

Usage: python bench/bench_ocr.py [--skip-engines] [--skip-generated] [--skip-media] [--library DIR]
Writes bench/results/ocr.json. Generated frames and videos use tests/text_frames.py (OpenCV
Hershey fonts in 5 faces, ~14-60 px letters, 5 colours, over moving backgrounds). The load of the
machine (os.getloadavg) is recorded next to every timing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import MEDIA, RESULTS, save, video_paths
from engine.evaluation.metrics import estimate
from engine.jobs import CancelToken
from engine.ocr.extract import ReadStats, read_video
from engine.ocr.reader import TextReader
from engine.ocr.words import joined_word_splits
from tests.text_frames import VOCABULARY, TextEvent, labelled_frames, make_text_video, random_style

SECTIONS = ("engines", "generated", "generated_search", "shared_media", "latency")
QUERIES = ["a dog", "people applauding", "a drum kit", "fireworks at night", "a car engine", "a baby crying",
           "someone chopping wood", "a boat on the water", "a man hitting a bag", "a gun shot"]


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def words_of(text: str) -> set[str]:
    """Lower-case words of 3+ letters, with run-together words split (as the search sees them)."""
    return {w for w in re.findall(r"[a-z]+", f"{text} {joined_word_splits(text)}".lower()) if len(w) >= 3}


# ---- engines on labelled frames -----------------------------------------------------------------
def tesseract_text(bgr: np.ndarray) -> str:
    _, png = cv2.imencode(".png", bgr)
    out = subprocess.run(["tesseract", "stdin", "stdout", "--psm", "11", "-l", "eng"], input=png.tobytes(),
                         capture_output=True, env={**os.environ, "OMP_THREAD_LIMIT": "1"}, check=False)
    return out.stdout.decode(errors="replace")


def score_frames(read, frames) -> dict:
    found, truth, false_words, blank_hits, times = [], [], [], [], []
    for rgb, gt in frames:
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        t0 = time.perf_counter()
        got = words_of(read(bgr))
        times.append(time.perf_counter() - t0)
        if gt:
            found.append(len(got & set(gt)) / len(gt))
            truth.append(len(got & set(gt)))
            false_words.append(len(got - set(gt)))
        else:
            blank_hits.append(float(bool(got)))
    tp, fp = sum(truth), sum(false_words)
    return {"word_recall": estimate(found, random=0.0).to_dict(), "word_precision": tp / max(1, tp + fp),
            "blank_frames_with_text": estimate(blank_hits).to_dict(), "ms_per_frame_median": 1000 * np.median(times),
            "ms_per_frame_mean": 1000 * float(np.mean(times)), "frames": len(frames), "load": load()}


def bench_engines() -> dict:
    frames = labelled_frames(60, 30, seed=11)
    reader = TextReader(threads=1)
    reader.read(cv2.cvtColor(frames[0][0], cv2.COLOR_RGB2BGR))  # load outside the timing
    out = {"rapidocr": score_frames(lambda f: " ".join(ln.text for ln in reader.read(f)), frames)}
    if shutil.which("tesseract"):
        out["tesseract"] = score_frames(tesseract_text, frames)
    for side in (480,):
        small = TextReader(max_side=side, threads=1)
        out[f"rapidocr_{side}px"] = score_frames(lambda f, r=small: " ".join(ln.text for ln in r.read(f)), frames)
    return out


# ---- generated videos ---------------------------------------------------------------------------
def generated_set(root: Path, n_text: int = 12, n_blank: int = 4, seconds: float = 20.0) -> list[dict]:
    rng = np.random.default_rng(5)
    items = []
    for i in range(n_text + n_blank):
        events = []
        if i < n_text:
            for start in (float(rng.uniform(1, 6)), float(rng.uniform(11, 15))):
                words = [str(w) for w in rng.choice(VOCABULARY, size=int(rng.integers(1, 3)), replace=False)]
                style = random_style(rng, (640, 360))
                style.scale = min(style.scale, 1.4)  # keep two words on screen
                events.append(TextEvent(start, start + float(rng.uniform(2.5, 5)), " ".join(words), style))
        path = make_text_video(root / f"gen_{i:02d}.mp4", events, seconds, fps=5, seed=100 + i)
        items.append({"path": path, "events": events})
    return items


def bench_generated(root: Path) -> dict:
    items = generated_set(root)
    reader, stats = TextReader(threads=1), ReadStats()
    from engine.media.clips import clip_windows

    recall, covered, tp, fp, blank_words, t0 = [], [], 0, 0, 0, time.perf_counter()
    for item in items:
        spans = read_video(item["path"], clip_windows(20.0, 4.0), reader, stats=stats)
        on_screen = {w for ev in item["events"] for w in ev.text.split()}
        read_words = set().union(*[words_of(s.text) for s in spans]) if spans else set()
        if not item["events"]:
            blank_words += len(read_words)
        tp += len(read_words & on_screen)
        fp += len(read_words - on_screen)
        for ev in item["events"]:
            near = [s for s in spans if s.start < ev.end and s.end > ev.start]
            seen = set().union(*[words_of(s.text) for s in near]) if near else set()
            recall.append(len(seen & set(ev.text.split())) / len(ev.text.split()))
            hit = [s for s in near if set(ev.text.split()) & words_of(s.text)]
            covered.append(float(bool(hit) and min(s.start for s in hit) <= ev.start
                                 and max(s.end for s in hit) >= ev.end))
    elapsed = time.perf_counter() - t0
    return {"videos": len(items), "events": len(recall), "word_recall": estimate(recall, random=0.0).to_dict(),
            "word_precision": tp / max(1, tp + fp), "words_read_on_blank_videos": blank_words,
            "time_range_covers_event": estimate(covered).to_dict(), "frames": stats.frames,
            "frames_read": stats.read, "frames_same": stats.same, "read_s": elapsed,
            "x_realtime_ocr_alone": 20.0 * len(items) / elapsed, "load": load(), "items": items}


def bench_generated_search(root: Path, items: list[dict]) -> dict:
    """Each event's words as a query over a library of the generated videos: is the top moment in the
    right video, with reason 'read', covering the event? Random: the share of clips overlapping it."""
    from engine.api import Library

    lib = Library(root / "lib", device="cpu")
    list(lib.index([root], CancelToken(), transcribe=False, read_text=True))
    n_clips = lib.db.conn.execute("SELECT COUNT(*) FROM clips").fetchone()[0]
    hits, randoms = [], []
    for item in items:
        for ev in item["events"]:
            top = lib.search_text(ev.text.lower(), top_k=5).moments[:1]
            ok = bool(top) and Path(top[0].path) == item["path"].resolve() and "read" in top[0].reasons \
                and top[0].start <= ev.start and top[0].end >= ev.end
            hits.append(float(ok))
            randoms.append(len([k for k in range(5) if 4 * k < ev.end and 4 * k + 4 > ev.start]) / n_clips)
    lib.close()
    top1 = estimate(hits, random=float(np.mean(randoms)))
    return {"queries": len(hits), "top1_right_moment_with_read": top1.to_dict()}


# ---- shared media: cost share, latency, what is read -------------------------------------------
def query_latency(lib, rounds: int = 3) -> float:
    lib.search_text("warm up", 5)
    times = []
    for _ in range(rounds):
        for q in QUERIES:
            t0 = time.perf_counter()
            lib.search_text(q, 10)
            times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def bench_media(root: Path, frames_per_clip: tuple[int, ...] = (1, 2)) -> dict:
    """Index without OCR, then run the OCR stage once per frames-per-clip setting (the last run's
    rows stay). Wall and process CPU times: CPU time is less disturbed by other load."""
    from engine.api import Library
    from engine.ocr.catchup import read_library

    if root.exists():
        shutil.rmtree(root)
    lib = Library(root, device="cpu")
    lib.load_models().load_all()
    paths = video_paths()
    load_before = load()
    t0, c0 = time.perf_counter(), time.process_time()
    last = [p for p in lib.index(paths, CancelToken(), transcribe=False, read_text=False)][-1]
    index_s, index_cpu = time.perf_counter() - t0, time.process_time() - c0
    video_s = last.info.get("video_seconds", 0.0)
    latency_before = query_latency(lib)
    runs = {}
    for fpc in frames_per_clip:
        lib.db.conn.execute("DELETE FROM ocr_done")
        t0, c0 = time.perf_counter(), time.process_time()
        stages = list(read_library(lib, CancelToken(), frames_per_clip=fpc))
        ocr_s, ocr_cpu = time.perf_counter() - t0, time.process_time() - c0
        info = stages[-1].info if stages else {}
        runs[fpc] = {"ocr_stage_s": ocr_s, "ocr_cpu_s": ocr_cpu, "x_realtime_with_ocr": video_s / (index_s + ocr_s),
                     "ocr_share_of_indexing_wall": ocr_s / (index_s + ocr_s),
                     "ocr_share_of_indexing_cpu": ocr_cpu / (index_cpu + ocr_cpu),
                     "frames": info.get("frames"), "frames_read": info.get("frames_read"),
                     "frames_same": info.get("frames_same"), "load": load()}
    # the same searcher: its on-screen text vectors reload when the table changed (data_version)
    latency_after = query_latency(lib)
    read = {}
    for path, start, end, text, conf in lib.db.conn.execute(
            "SELECT v.path, s.start, s.end, s.text, s.confidence FROM screen_text s JOIN videos v ON v.id = s.video_id "
            "ORDER BY v.path, s.start"):
        read.setdefault(str(Path(path).relative_to(MEDIA)), []).append(
            {"start": start, "end": end, "text": text, "confidence": round(conf, 3)})
    lib.close()
    return {"videos": len(paths), "video_seconds": video_s, "index_s_without_ocr": index_s,
            "index_cpu_s_without_ocr": index_cpu, "x_realtime_without_ocr": video_s / index_s,
            "ocr_by_frames_per_clip": runs, "load_before": load_before, "load_after": load(),
            "query_ms_median_without_read_rows": latency_before, "query_ms_median_with_read_rows": latency_after,
            "videos_with_text": len(read), "read": read}


def bench_latency(root: Path, rounds: int = 5) -> dict:
    """Query latency with and without the read channel, interleaved query by query on the same
    library (the shared media, read), in alternating order, so that the machine's load drifts out
    of the difference."""
    from engine.api import Library
    from engine.search import channels
    from engine.search.query import text_query

    lib = Library(root, device="cpu")
    searcher = lib.searcher()
    read = next(c for c in channels.CHANNELS if c.reason == "read")
    with_read, without_read, channel = [], [], []
    searcher.search_text("warm up", 10)
    def timed(q: str, use_read: bool) -> float:
        if not use_read:
            channels.CHANNELS.remove(read)
        try:
            t0 = time.perf_counter()
            searcher.search_text(q, 10)
            return time.perf_counter() - t0
        finally:
            if not use_read:
                channels.CHANNELS.append(read)

    for r in range(rounds):
        for i, q in enumerate(QUERIES):
            order = (True, False) if (r + i) % 2 == 0 else (False, True)  # alternate: no order effect
            times = {use: timed(q, use) for use in order}
            with_read.append(times[True])
            without_read.append(times[False])
            query = text_query(searcher.model, q)
            t0 = time.perf_counter()
            read.hits(searcher.sources, query)
            channel.append(time.perf_counter() - t0)
    rows = lib.db.conn.execute("SELECT COUNT(*) FROM screen_text").fetchone()[0]
    lib.close()
    diff = np.asarray(with_read) - np.asarray(without_read)
    return {"queries": len(with_read), "screen_text_rows": rows,
            "ms_median_with_read": 1000 * float(np.median(with_read)),
            "ms_median_without_read": 1000 * float(np.median(without_read)),
            "ms_paired_difference": estimate(1000 * diff, stat=np.median).to_dict(),
            "ms_read_channel_alone_median": 1000 * float(np.median(channel)), "load": load()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-engines", action="store_true")
    ap.add_argument("--skip-generated", action="store_true")
    ap.add_argument("--skip-media", action="store_true")
    ap.add_argument("--latency-only", action="store_true", help="only the latency section (library already read)")
    ap.add_argument("--library", type=Path, default=Path("/tmp/mmvsearch-bench-ocr-lib"))
    args = ap.parse_args()
    out: dict = {"engine": "rapidocr-onnxruntime 1.4.4 (PP-OCRv4 det + rec, ONNX, 1 thread)", "load_start": load()}
    if args.latency_only:
        args.skip_engines = args.skip_generated = args.skip_media = True
        out["latency"] = bench_latency(args.library)
        print(out["latency"])
    if not args.skip_engines:
        out["engines"] = bench_engines()
        save_merged(out)
        print("engines", {k: (v["word_recall"]["value"], v["ms_per_frame_median"]) for k, v in out["engines"].items()})
    if not args.skip_generated:
        with tempfile.TemporaryDirectory() as tmp:
            gen = bench_generated(Path(tmp))
            items = gen.pop("items")
            out["generated"] = gen
            save_merged(out)   # the search part takes longest: keep what is measured
            out["generated_search"] = bench_generated_search(Path(tmp), items)
        print("generated", out["generated"]["word_recall"], out["generated_search"])
    if not args.skip_media:
        out["shared_media"] = bench_media(args.library)
        print({k: v for k, v in out["shared_media"].items() if k != "read"})
    print(save_merged(out))


def save_merged(out: dict) -> Path:
    """Write ocr.json; sections this run skipped keep their last figures."""
    previous = RESULTS / "ocr.json"
    if previous.exists():
        kept = json.loads(previous.read_text())
        out = {**{k: v for k, v in kept.items() if k in SECTIONS}, **out}
    return save("ocr", out)


if __name__ == "__main__":
    main()
