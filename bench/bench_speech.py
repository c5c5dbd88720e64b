"""Speech benchmarks: transcription speed, word error rate, spoken-content search, query latency.

    python bench/bench_speech.py [--media ../shared/media] [--library LIB] [--json out.json]

1. speed: x real time of each pass on the shared videos (speech with VAD, speech without VAD,
   sound captions, the full transcribe()), and hallucinated "said" segments on the non-speech
   videos: faster-whisper defaults vs our gated pass.
2. WER on espeak-ng sentences (long sentences, through transcribe()) and on short spoken queries
   (through spoken_text()).
3. Spoken-content search: narrated test videos (espeak-ng voice muxed with PyAV) plus the shared
   videos' own transcripts and captions as distractors in one library database; each narrated
   video is queried by a paraphrase and by one exact word; R@1 / R@5 over videos.
4. Latency from the end of a recording (fake ALSA microphone) to its transcript, and, with
   ``--library`` (an indexed library), to search results.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.common import MEDIA, save, videos
from engine.index.db import connect, transaction
from engine.media.audio import load_audio
from engine.speech.query import spoken_text
from engine.speech.store import save_segments, transcript_hits
from engine.speech.transcribe import as_model_input, get_transcriber
from tests.speech_fixtures import (
    NON_SPEECH_VIDEOS,
    SENTENCES,
    fake_microphone,
    make_narrated_video,
    silence,
    speak,
    word_error_rate,
)

# narration, paraphrase query, exact-word query
NARRATED = [
    ("Today I will explain how we plan the budget for next year.", "talking about financial planning", "budget"),
    ("Today we are cooking dinner. First we chop the onions and fry them in a pan.",
     "preparing a meal in the kitchen", "onions"),
    ("Tomorrow the weather will be sunny and warm, with some rain in the evening.", "the forecast", "rain"),
    ("My dog loves to chase the red ball in the park every morning.", "a pet playing fetch", "ball"),
    ("The children played football in the park after school.", "kids playing a sport", "football"),
    ("We took the train to the city and visited an old museum.", "a trip by rail to an exhibition", "museum"),
    ("The mechanic changed the oil and fixed the brakes on my car.", "a vehicle being serviced", "brakes"),
    ("She practiced the piano for two hours before the concert.", "rehearsing for a performance", "piano"),
    ("In spring we plant tomatoes and water the garden every day.", "growing vegetables", "tomatoes"),
    ("The doctor checked my blood pressure and gave me some medicine.", "a visit to the clinic", "medicine"),
]
QUERIES = ["a dog barking", "fireworks", "a car engine", "someone playing the drums", "people clapping",
           "birds singing", "a baby crying", "a man coughing"]


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def bench_speed(transcriber, clips: dict[str, np.ndarray]) -> dict:
    seconds = sum(len(w) for w in clips.values()) / 16000
    passes = {
        "speech_vad": lambda w: transcriber.speech(w, vad=True),
        "speech_no_vad": lambda w: transcriber.speech(w, vad=False),
        "captions": transcriber.sound_captions,
        "transcribe_all": transcriber.transcribe,
    }
    out: dict = {"audio_seconds": round(seconds, 1), "videos": len(clips)}
    for name, run in passes.items():
        total = sum(timed(run, w)[1] for w in clips.values())
        out[name] = {"seconds": round(total, 2), "x_real_time": round(seconds / total, 1)}
        print(f"[speed] {name}: {seconds / total:.1f}x real time", file=sys.stderr)
    return out


def bench_hallucination(transcriber, clips: dict[str, np.ndarray]) -> dict:
    """Said segments on videos without speech: faster-whisper's defaults vs our gated VAD pass."""
    raw, ours = {}, {}
    for rel in NON_SPEECH_VIDEOS:
        wave = clips.get(rel)
        if wave is None:
            continue
        segments, _ = transcriber.model.transcribe(wave, language="en", beam_size=1)
        raw[rel] = [s.text.strip() for s in segments]
        ours[rel] = [s.text for s in transcriber.speech(wave)]
    return {"videos": len(raw), "default_segments": sum(map(len, raw.values())),
            "gated_segments": sum(map(len, ours.values())),
            "default_examples": sorted({t for ts in raw.values() for t in ts})[:8],
            "gated_texts": {k: v for k, v in ours.items() if v}}


def bench_wer(transcriber) -> dict:
    long_rates = []
    for sentence in SENTENCES:
        said = " ".join(s.text for s in transcriber.transcribe(speak(sentence)) if s.kind == "said")
        long_rates.append(word_error_rate(sentence, said))
    short = {q: spoken_text(speak(q, words_per_minute=130)) or "" for q in QUERIES}
    short_rates = [word_error_rate(q, t) for q, t in short.items()]
    return {"sentences_wer": round(float(np.mean(long_rates)), 3), "sentences": len(SENTENCES),
            "queries_wer": round(float(np.mean(short_rates)), 3), "queries": short}


def bench_search(transcriber, clips: dict[str, np.ndarray], folder: Path) -> dict:
    import torch

    from engine.models.text import TextBackbone

    embed = TextBackbone(torch.device("cpu")).features
    db = connect(folder / "bench.db")
    targets = {}
    with transaction(db) as conn:
        for i, (narration, _, _) in enumerate(NARRATED):
            path = make_narrated_video(folder / f"narrated_{i}.mp4", [0.5, narration, 1.0])
            wave = load_audio(path)
            targets[i] = _add(conn, str(path), wave, transcriber.transcribe(wave), embed)
        for rel, wave in clips.items():  # the shared videos' transcripts and captions as distractors
            _add(conn, rel, wave, transcriber.transcribe(wave), embed)
    result = {"narrated_videos": len(NARRATED), "gallery_videos": len(NARRATED) + len(clips)}
    for kind, column in (("paraphrase", 1), ("exact_word", 2)):
        ranks = []
        for i, row in enumerate(NARRATED):
            ranking = _video_ranking(db.conn, row[column], embed)
            ranks.append(ranking.index(targets[i]) + 1 if targets[i] in ranking else 10**6)
        result[kind] = {"R@1": _recall(ranks, 1), "R@5": _recall(ranks, 5), "ranks": ranks}
        print(f"[search] {kind}: R@1 {result[kind]['R@1']} R@5 {result[kind]['R@5']}", file=sys.stderr)
    db.conn.close()
    return result


def _add(conn, path: str, wave: np.ndarray, segments, embed) -> int:
    duration = len(wave) / 16000
    video_id = int(conn.execute("INSERT INTO videos(path, size, mtime, phash, duration, status, has_audio) "
                                "VALUES (?, 1, 0, ?, ?, 'done', 1)", (path, path, duration)).lastrowid)
    for idx, start in enumerate(np.arange(0.0, duration, 4.0)):
        conn.execute("INSERT INTO clips(video_id, idx, start, end) VALUES (?, ?, ?, ?)",
                     (video_id, idx, float(start), float(min(duration, start + 4.0))))
    save_segments(conn, video_id, segments, embed)
    return video_id


def _video_ranking(conn, text: str, embed) -> list[int]:
    ranking: list[int] = []
    for hit in transcript_hits(conn, text, embed([text])[0]):
        if hit.video_id not in ranking:
            ranking.append(hit.video_id)
    return ranking


def _recall(ranks: list[int], k: int) -> float:
    return round(sum(r <= k for r in ranks) / len(ranks), 3)


def bench_latency(folder: Path, library: str | None) -> dict:
    wave = np.concatenate([silence(0.3), speak("a dog barking", words_per_minute=130), silence(0.5)])
    from engine.speech.recorder import record

    with fake_microphone(folder, wave) as mic:
        recorded = record(len(wave) / 16000, device=mic)
    spoken_text(recorded)  # warm-up: model load
    times = [timed(spoken_text, recorded)[1] for _ in range(5)]
    out = {"recording_seconds": round(len(wave) / 16000, 2),
           "to_transcript_s": {"median": round(float(np.median(times)), 3), "max": round(max(times), 3)}}
    if library:
        from engine.api import Library

        lib = Library(library)
        lib.search_audio(recorded)  # warm-up: models, indexes
        times = [timed(lib.search_audio, recorded)[1] for _ in range(3)]
        out["to_results_s"] = {"median": round(float(np.median(times)), 3), "max": round(max(times), 3),
                               "library_videos": len(lib.videos())}
        lib.close()
    print(f"[latency] {out}", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--media", type=Path, default=MEDIA)
    ap.add_argument("--library", help="an indexed library, to time end of recording -> search results")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    transcriber = get_transcriber("cpu")
    clips = {}
    for row in videos():
        wave = load_audio(args.media / row["path"])
        if wave is not None:
            clips[row["path"]] = as_model_input(wave, 16000)
    transcriber.transcribe(clips[next(iter(clips))])  # warm-up
    figures = {"load_average_at_start": os.getloadavg()[0], "speed": bench_speed(transcriber, clips),
               "hallucination": bench_hallucination(transcriber, clips), "wer": bench_wer(transcriber)}
    with tempfile.TemporaryDirectory() as tmp:
        figures["search"] = bench_search(transcriber, clips, Path(tmp))
        figures["latency"] = bench_latency(Path(tmp), args.library)
    figures["load_average_at_end"] = os.getloadavg()[0]
    path = save("speech", figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    print(f"saved {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
