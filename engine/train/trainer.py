"""Self-supervised fine-tuning of the FAC heads on the features stored in a library.

``train(lib, ...)`` is a generator of Progress: it trains a copy of the active heads (by default
NCE in S_va between a clip's picture and sound, MIL-NCE in S_vat between its picture and the
sentences said or heard around it; see objective.py), checkpoints so a crashed run resumes, then
publishes a new model (re-projected embeddings, new HNSW files, one-transaction switch; see
``publish.py``). The active model is never modified in place, so the previous one stays available.

The parts: config.py (settings), run.py (the loop), objective.py (what is optimised),
precision.py (mixed precision), deep_parts.py (deep mode), evaluate.py (figures).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

from engine.device import resolve_device
from engine.errors import TrainingError
from engine.jobs import CancelToken, Progress
from engine.train.checkpoint import load_checkpoint
from engine.train.config import TrainConfig, saved_config
from engine.train.data import load_training_data
from engine.train.deep import remove_cache
from engine.train.deep_parts import prepare_deep
from engine.train.holdout import no_holdout, split_holdout
from engine.train.noisy import noisy_copies
from engine.train.publish import publish
from engine.train.run import TrainingRun

RESUME_FILE = "train-resume.pt"


def train(lib, *, token: CancelToken, resume: bool = False, **options) -> Iterator[Progress]:
    """Fine-tune the active model on ``lib``'s stored features and switch to the result.

    ``options`` are the fields of :class:`TrainConfig` (epochs, minutes, device, deep, objective,
    batch_size, lr, weights, ...). With ``deep`` the last vision blocks train too, on clips decoded
    again (see deep.py). Yields Progress (stage "prepare", "decode" in deep mode, "train", then
    "reproject", "index", "done"); raises :class:`~engine.errors.Cancelled` when ``token`` is set
    and TrainingError on bad input.
    """
    base = lib.load_models()
    resume_path = Path(lib.paths.models_dir) / RESUME_FILE
    checkpoint = load_checkpoint(resume_path) if resume and resume_path.exists() else None
    cfg = TrainConfig(**options) if checkpoint is None else saved_config(checkpoint, options.get("device", "auto"))
    choice = resolve_device(cfg.device)
    device = choice.device
    yield Progress(stage="prepare", message=f"loading stored features ({choice.note})")
    data = load_training_data(
        lib.db,
        backbone_id=base.config.backbone_id,
        vision_dim=base.config.vision_dim,
        audio_dim=base.config.audio_dim,
        text_dim=base.config.text_dim,
        window=cfg.sentence_window,
        tail_id=base.tail_id,
    )
    deep = None
    if cfg.deep:
        if checkpoint is None:  # only a resumed run may reuse decoded clips: the library may have changed
            remove_cache(lib.paths.models_dir)
        deep, data = yield from prepare_deep(lib, base, data, token, device)
    if int(data.has_audio.sum()) < 2 and not any(len(s) for s in data.clip_sentences):
        raise TrainingError("nothing to learn from: fewer than two clips with sound and no transcripts")
    holdout = split_holdout(data, cfg.holdout) if cfg.holdout > 0 else no_holdout(data)
    yield Progress(stage="prepare", message=holdout.note, info={"held_out": holdout.summary()})
    held_deep = None
    if deep is not None:
        deep, held_deep = deep.subset(holdout.train_rows), deep.subset(holdout.held_rows)
    noisy = None
    if cfg.noise_copies > 0 and bool(holdout.train.has_audio.any()):
        noisy = yield from noisy_copies(lib.db.conn, lambda: base.whisper, holdout.train, copies=cfg.noise_copies,
                                        max_seconds=cfg.noise_max_seconds, probability=cfg.noise_probability,
                                        seed=cfg.seed, token=token)
    heads = copy.deepcopy(base.heads).to(device)
    run = TrainingRun(cfg, heads, holdout.train, device, base.model_id, deep, holdout,
                      held_deep if holdout.judged else None, noisy)
    if checkpoint is not None:
        run.restore(checkpoint)
        yield Progress(stage="prepare", message=f"resuming the interrupted run at step {run.state.step}")
    else:
        run.calibrate_centres()
    yield from run.loop(token, resume_path)
    for p in publish(lib, run.heads, run.report(), token=token, device=device, tail=run.tail_update(base)):
        if p.stage == "done" and hasattr(run.objective, "publish"):  # e.g. SwAV's prototypes, for Topics
            run.objective.publish(Path(lib.paths.models_dir), p.info["model_id"])
        yield p
    resume_path.unlink(missing_ok=True)
    run.deep = deep = None  # unmap the trunk cache before deleting it (Windows refuses to delete mapped files)
    remove_cache(lib.paths.models_dir)
