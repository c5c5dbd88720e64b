"""CLI commands of fine-tuning: ``train``, ``models`` (list / ``use ID``) and ``eval``.

Plugged into ``engine/cli.py`` through :func:`add_commands` and :func:`run_command`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from engine.jobs import CancelToken, Progress
from engine.terminal import ProgressLine

# The registry (objective.OBJECTIVES) needs torch; the parser must not. tests/test_objectives.py
# checks that the two lists agree. docs/objectives.md says which to pick.
OBJECTIVE_NAMES = ("mmv", "simclr", "barlow", "swav", "gdt", "gdt-td", "avlnet")


def add_commands(sub) -> None:
    tr = sub.add_parser("train", help="fine-tune the model on this library (self-supervised)")
    limit = tr.add_mutually_exclusive_group()
    limit.add_argument("--epochs", type=int, help="passes over the stored clips (default 30)")
    limit.add_argument("--minutes", type=float, help="train for this long instead")
    # dest differs from the global --device so an absent value here does not mask it.
    tr.add_argument("--device", dest="train_device", choices=["auto", "cpu", "cuda", "mps"])
    tr.add_argument("--deep", action="store_true", help="also unfreeze the last backbone blocks (GPU)")
    tr.add_argument("--batch-size", type=int, default=64)
    tr.add_argument("--lr", type=float, default=1e-3)
    tr.add_argument(
        "--weights",
        type=float,
        nargs=2,
        default=(1.0, 1.0),
        metavar=("NCE", "MILNCE"),
        help="loss weights of video-audio NCE and video-narration MIL-NCE (MMV: 1 1 or 1 10)",
    )
    tr.add_argument("--objective", choices=OBJECTIVE_NAMES, default="mmv",
                    help="self-supervised objective (default mmv; see docs/objectives.md)")
    tr.add_argument("--gdt-shift", type=int, default=0,
                    help="neighbouring clips up to N apart are positives (gdt objectives: default 1)")
    tr.add_argument("--holdout", type=float, default=0.2,
                    help="fraction of the videos held out for validation, never trained on (0: none)")
    tr.add_argument("--patience", type=int, default=5,
                    help="stop after this many epochs without a better held-out loss (0: never)")
    tr.add_argument("--noise-copies", type=int, default=2,
                    help="noisy copies of each training clip's sound, so that microphone recordings "
                         "find their pictures (0: none; reads the sound of up to 5 min of videos again)")
    tr.add_argument("--resume", action="store_true", help="continue an interrupted run")

    mo = sub.add_parser("models", help="list the library's models, or switch with 'models use ID'")
    mo_sub = mo.add_subparsers(dest="models_action")
    use = mo_sub.add_parser("use", help="make a model the active one (revert to an earlier model)")
    use.add_argument("model_id")

    ev = sub.add_parser("eval", help="retrieval quality on a labelled folder (text->video, audio->video)")
    ev.add_argument("--labels", required=True, help="TSV manifest with path, kind, label columns")
    ev.add_argument("--json", action="store_true")


def run_command(args, lib_factory: Callable) -> int | None:
    if args.command == "train":
        return _train(args, lib_factory())
    if args.command == "models":
        return _models(args, lib_factory())
    if args.command == "eval":
        return _eval(args, lib_factory())
    return None


def _train(args, lib) -> int:
    token = CancelToken()
    device = args.train_device or getattr(args, "device", None) or "auto"
    out = ProgressLine()
    try:
        for progress in lib.train(
            token,
            epochs=args.epochs,
            minutes=args.minutes,
            device=device,
            deep=args.deep,
            batch_size=args.batch_size,
            lr=args.lr,
            weights=tuple(args.weights),
            gdt_shift=args.gdt_shift,
            objective=args.objective,
            holdout=args.holdout,
            patience=args.patience,
            noise_copies=args.noise_copies,
            resume=args.resume,
        ):
            out.show(progress, format_progress(progress))
            if "held_out" in progress.info or progress.info.get("stopped_early"):
                print(f"\n{progress.message}", file=sys.stderr)  # kept on screen, not overdrawn
            if progress.stage == "done":
                _summary(progress)
    except KeyboardInterrupt:
        token.cancel()
        raise
    finally:
        out.end()
    return 0


def format_progress(p: Progress) -> str:
    if p.stage != "train":
        total = f" {int(p.done)}/{int(p.total)}" if p.total else ""
        return f"{p.stage}{total} {p.message}".strip()
    i = p.info
    if "loss" not in i:
        return p.message
    eta = "" if p.eta_s is None else f" ETA {int(p.eta_s) // 60}:{int(p.eta_s) % 60:02d}"
    val = "" if i.get("best_val_loss") is None else f" held-out loss {i['best_val_loss']:.3f} (best)"
    return (
        f"step {int(p.done)}/{int(p.total)} epoch {i['epoch']} loss {i['loss']:.3f} "
        f"({_parts(i)}){val} {i['clips_per_s']:.0f} clips/s{eta}"
    )


def _parts(info: dict) -> str:
    """The loss terms of the chosen objective (``loss_<name>`` entries), e.g. "nce 0.41, milnce 2.1"."""
    return ", ".join(f"{k[5:]} {v:.3f}" for k, v in info.items() if k.startswith("loss_") and v)


def _summary(p: Progress) -> None:
    print(f"\nnew model {p.info['model_id']} (parent {p.info['parent']}), "
          f"trained {p.info['train_seconds']:.0f} s", file=sys.stderr)
    for line in held_out_lines(p.info.get("metrics", {}).get("held_out", {})):
        print(line, file=sys.stderr)


FIGURE_NAMES = {"sound_to_picture": "sound -> picture", "sound_to_sound": "sound -> sound",
                "narration_to_picture": "narration -> picture"}


def _estimate(e: dict | None) -> str:
    return "-" if not e else f"{e['value']:.2f} [{e['low']:.2f}, {e['high']:.2f}]"


def held_out_lines(held: dict) -> list[str]:
    """A training run's before/after figures, which exist only for videos it never trained on;
    or the plain reason why there are none."""
    if not held:
        return []
    if not held.get("judged"):
        return [f"held-out check: {held.get('note', 'none')}"]
    before, after = held.get("before", {}), held.get("after", {})
    lines = [f"held-out check on {len(held['videos'])} videos never trained on ({held['clips']} clips), "
             f"before -> after fine-tuning (best held-out loss at step {held.get('best_step')}"
             f"{', stopped early' if held.get('stopped_early') else ''}):"]
    for key, name in FIGURE_NAMES.items():
        for k in ("R@1", "R@5"):
            b, a = before.get(key, {}).get(k), after.get(key, {}).get(k)
            if a or b:
                ref = a or b
                lines.append(f"  {name} {k} {_estimate(b)} -> {_estimate(a)} "
                             f"(random {ref['random']:.2f}, {ref['n_queries']} queries)")
    lines.append("  [..] = 95% bootstrap interval over queries")
    return lines


def _models(args, lib) -> int:
    if args.models_action == "use":
        lib.use_model(args.model_id)
        print(f"now using {args.model_id}")
        return 0
    for m in lib.list_models():
        mark = "*" if m["active"] else (" " if m["usable"] else "x")
        steps = m["info"].get("steps")
        extra = f"  parent {m['parent']}, {steps} steps" if m["parent"] else ""
        tail = m["info"].get("tail_id")
        if tail:
            extra += ", deep (own vision tail)" if tail == m["id"] else f", vision tail of {tail}"
        stale = "" if m["usable"] else "  (trained for an older backbone: unusable)"
        print(f"{mark} {m['id']:<24} {m['name']}{extra}{stale}")
    return 0


def _eval(args, lib) -> int:
    from engine.train.evaluate import evaluate

    result = evaluate(lib, args.labels)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"model {result['model']}, {result['videos']} labelled videos")
    trained_on = result.get("labelled_videos_trained_on")
    if trained_on:
        print(f"note: this model was fine-tuned on {trained_on} of them; see the held-out lines")
    for name, key in (("text -> video", "text_to_video"), ("audio -> video", "audio_to_video"),
                      ("text -> video, held-out videos only", "held_out_text_to_video"),
                      ("audio -> video, held-out videos only", "held_out_audio_to_video")):
        if key in result:
            part = result[key]
            figs = "  ".join(f"{k} {_estimate(e)} (random {e['random']:.2f})"
                             for k, e in part["estimates"].items() if k.startswith("R@"))
            print(f"{name} ({part['queries']} queries): {figs or 'no queries'}")
    print("[..] = 95% bootstrap interval over queries")
    for line in held_out_lines(result.get("training_held_out", {})):
        print(line)
    return 0
