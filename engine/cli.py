"""``mmvsearch`` command line: index, search, status, remove (+ speech and training commands).

Errors are one clear line on stderr and a non-zero exit code; ``--json`` prints one JSON object
per moment on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from engine import __version__
from engine.errors import Cancelled, MMVError
from engine.format import clock, span
from engine.jobs import CancelToken, Progress
from engine.terminal import ProgressLine

EXIT_ERROR, EXIT_USAGE, EXIT_CANCELLED = 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mmvsearch", description="Find moments in your videos by text, sound or image.")
    p.add_argument("--library", help="library directory (default: $MMVSEARCH_LIBRARY or the per-user data dir)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], help="compute device (default: settings)")
    p.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    p.add_argument("--version", action="version", version=f"mmvsearch {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    ix = sub.add_parser("index", help="add videos or folders to the library (incremental)")
    ix.add_argument("paths", nargs="*", help="files or folders (with --retry-errors: default, every folder "
                    "holding videos that failed)")
    ix.add_argument("--retry-errors", action="store_true", help="try again files recorded as unreadable")
    ix.add_argument("--transcribe", dest="transcribe", action="store_true", default=None,
                    help="transcribe speech and caption sounds (default: library setting)")
    ix.add_argument("--no-transcribe", dest="transcribe", action="store_false")
    ix.add_argument("--read-text", dest="read_text", action="store_true", default=None,
                    help="read on-screen text (OCR) after indexing (default: library setting)")
    ix.add_argument("--no-read-text", dest="read_text", action="store_false")
    ix.add_argument("--ray", metavar="ADDRESS", help="spread decoding and embedding over a Ray cluster "
                    "('local' starts one here; workers must see the videos at the same paths)")
    ix.add_argument("--ray-workers", type=int, default=2, help="Ray workers (default 2)")
    ix.add_argument("--ray-cpus", type=float, default=1.0, help="CPUs per Ray worker (default 1)")
    ix.add_argument("--ray-gpus", type=float, default=0.0, help="GPUs per Ray worker (default 0)")
    ix.add_argument("--ray-batch", type=int, default=1, help="files per Ray task (default 1)")

    se = sub.add_parser("search", help="search the library")
    q = se.add_mutually_exclusive_group(required=True)
    q.add_argument("--text", help="describe the moment in words")
    q.add_argument("--audio", help="an audio (or video) file: find moments that sound like it / what is said")
    q.add_argument("--image", help="an image file: find moments that look like it")
    q.add_argument("--like", type=int, metavar="CLIP_ID", help="moments like an indexed clip")
    q.add_argument("--mic", action="store_true", help="record from the microphone, then search")
    se.add_argument("--seconds", type=float, default=5.0, help="recording length for --mic")
    se.add_argument("--top", type=_positive_int, default=10, help="number of moments")
    se.add_argument("--json", action="store_true", help="one JSON object per moment")

    sub.add_parser("status", help="what the library holds")
    rm = sub.add_parser("remove", help="forget a file or folder")
    rm.add_argument("path")
    for module in _plugin_modules():
        module.add_commands(sub)
    return p


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _plugin_modules() -> list:
    from engine.index import doctor_cli
    from engine.speech import cli as speech_cli
    from engine.topics import cli as topics_cli
    from engine.train import cli as train_cli

    return [speech_cli, train_cli, topics_cli, doctor_cli]


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    lib_factory = _lib_factory(args)
    try:
        handler = COMMANDS.get(args.command)
        if handler is not None:
            return handler(args, lib_factory)
        for module in _plugin_modules():
            code = module.run_command(args, lib_factory)
            if code is not None:
                return code
        raise MMVError(f"unknown command {args.command}")
    except (Cancelled, KeyboardInterrupt):
        print("mmvsearch: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except MMVError as exc:
        print(f"mmvsearch: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # `mmvsearch status | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _lib_factory(args) -> Callable:
    cache = {}

    def factory():
        if "lib" not in cache:
            from engine.api import Library

            cache["lib"] = Library(args.library, device=args.device, one_shot=True)
        return cache["lib"]

    return factory


def cmd_index(args, lib_factory) -> int:
    lib = lib_factory()
    token = CancelToken()
    last: Progress | None = None
    paths = args.paths or (lib.error_folders() if args.retry_errors else [])
    if not paths:
        if args.retry_errors:
            print("no videos recorded as unreadable: nothing to retry", file=sys.stderr)
            return 0
        raise MMVError("give the files or folders to index")
    out = ProgressLine()  # a self-overwriting bar on a terminal; plain lines into pipes and logs
    try:
        for progress in lib.index(paths, token, transcribe=args.transcribe, read_text=args.read_text,
                                  retry_errors=args.retry_errors, ray=_ray_options(args)):
            out.show(progress, _progress_text(progress))
            last = progress
    except KeyboardInterrupt:
        token.cancel()
        raise
    finally:
        out.end()
    if last is not None and last.stage == "cancelled":
        return EXIT_CANCELLED
    problems = last.info.get("problems", []) if last is not None else []
    if not _any_indexed(lib, paths):
        detail = f": {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "") \
            if problems else ": no video files found there"
        raise MMVError(f"nothing could be indexed{detail}")
    for problem in problems:
        print(f"mmvsearch: warning: {problem}", file=sys.stderr)
    for v in lib.videos():
        if v.status == "error":
            print(f"mmvsearch: could not index {v.path}: {v.error}", file=sys.stderr)
    return 0


def _ray_options(args):
    if not args.ray:
        return None
    from engine.index.distributed import RayOptions

    if args.ray_workers < 1 or args.ray_batch < 1 or args.ray_cpus <= 0 or args.ray_gpus < 0:
        raise MMVError("--ray-workers and --ray-batch must be >= 1, --ray-cpus > 0, --ray-gpus >= 0")
    return RayOptions(args.ray, args.ray_workers, args.ray_cpus, args.ray_gpus, args.ray_batch)


def _any_indexed(lib, paths: list) -> bool:
    """Whether any of the files or folders asked for holds an indexed video (new or from before)."""
    for p in paths:
        resolved = Path(p).expanduser().resolve()
        rows = lib.videos(resolved) or [v for v in lib.videos() if v.path == str(resolved)]
        if any(v.status == "done" for v in rows):
            return True
    return False


def _progress_text(p: Progress) -> str:
    if p.stage in ("index", "done", "cancelled") and p.total:
        width = 24
        filled = int(width * p.fraction)
        info = p.info
        eta = f" ETA {clock(p.eta_s)}" if p.eta_s is not None and p.stage == "index" else ""
        speed = f" {info.get('x_realtime', 0):.0f}x real time" if info.get("video_seconds") else ""
        line = (f"[{'#' * filled}{'.' * (width - filled)}] {int(p.done)}/{int(p.total)} files, "
                f"{info.get('clips', 0)} clips, {clock(info.get('video_seconds', 0))} of video{speed}{eta}")
        if p.stage != "index":
            line += f" - {p.message}"
    else:
        line = p.message
    return line


def cmd_search(args, lib_factory) -> int:
    lib = lib_factory()
    t0 = time.perf_counter()
    if args.text is not None:
        try:
            args.text.encode("utf-8")
        except UnicodeEncodeError as exc:
            from engine.errors import QueryError

            raise QueryError("the text query is not valid UTF-8 (check the terminal's encoding)") from exc
        result = lib.search_text(args.text, args.top)
    elif args.audio is not None:
        result = lib.search_audio(args.audio, args.top)
    elif args.image is not None:
        result = lib.search_image(args.image, args.top)
    elif args.like is not None:
        result = lib.search_like(args.like, args.top)
    else:
        from engine.speech.recorder import record

        print(f"recording {args.seconds:.0f} s from the microphone...", file=sys.stderr)
        wave = record(args.seconds)
        result = lib.search_audio(wave, args.top)
    if result.transcript and not args.json:
        print(f'you said: "{result.transcript}"')
    for m in result.moments:
        if args.json:
            print(json.dumps(m.to_json()))
        else:
            why = "/".join(m.reasons)
            snippet = f'  "{m.snippet}"' if m.snippet else ""
            print(f"{m.score:6.3f}  {span(m.start, m.end, '-')}  {m.path}  [{why}] clip {m.best_clip_id}{snippet}")
    if not result.moments and not args.json:
        print("no matching moments (is the library empty? see `mmvsearch status`)", file=sys.stderr)
    logging.getLogger(__name__).info("search took %.3f s", time.perf_counter() - t0)
    return 0


def cmd_status(args, lib_factory) -> int:
    lib = lib_factory()
    s = lib.status()
    print(f"library: {s.root}")
    print(f"videos: {s.n_videos} ({s.n_done} indexed, {s.n_pending} pending, {s.n_errors} unreadable, "
          f"{s.n_missing} missing); clips: {s.n_clips}; video: {clock(s.seconds)}")
    print(f"active model: {s.active_model}")
    for f in s.folders:
        print(f"  {f.path}: {f.n_done}/{f.n_videos} indexed" + (f", {f.n_errors} errors" if f.n_errors else ""))
    for v in lib.videos():
        if v.status == "error":
            print(f"  unreadable: {v.path}: {v.error}")
    return 0


def cmd_remove(args, lib_factory) -> int:
    n = lib_factory().remove(args.path)
    if n == 0:
        print(f"mmvsearch: nothing in the library under {args.path}", file=sys.stderr)
        return EXIT_ERROR
    print(f"removed {n} video{'s' if n != 1 else ''}")
    return 0


COMMANDS: dict[str, Callable] = {"index": cmd_index, "search": cmd_search, "status": cmd_status, "remove": cmd_remove}

if __name__ == "__main__":
    sys.exit(main())
