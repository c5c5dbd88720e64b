"""The settings of one fine-tuning run (``TrainConfig``) and the counters a resumed run needs
(``RunState``). Kept apart from the loop so the CLI, the dialog and a resumed checkpoint all
agree on one list of fields."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from engine.errors import TrainingError

DEFAULT_EPOCHS = 30


@dataclass
class TrainConfig:
    epochs: int | None = None
    minutes: float | None = None
    device: str = "auto"
    deep: bool = False
    # Which training objective the loop optimises, by name (see objective.OBJECTIVES).
    objective: str = "mmv"
    batch_size: int = 64
    lr: float = 1e-3
    tail_lr_scale: float = 0.1  # deep mode: the pretrained vision blocks learn 10x slower than the heads
    weights: tuple[float, float] = (1.0, 1.0)  # (NCE in S_va, MIL-NCE in S_vat); MMV used 1:1 and 10:1
    queue_size: int = 4096
    momentum: float = 0.99
    gdt_shift: int = 0  # >0: clips up to this many positions apart in a video are positives
    sentence_window: float = 2.0  # seconds around a clip in which a sentence counts as its narration
    bridge_weight: float = 1.0   # audio -> S_vat bridge (see objective.step_losses)
    keep_weight: float = 1.0     # stay near the parent's S_vat video vectors (objective._keep_term)
    keep_audio_weight: float = 0.0  # stay near the parent's S_va audio vectors (sound-alike search)
    # The text head maps every future query, so by default it keeps the text tower's geometry
    # and only the video/audio side moves: fitting it to a few hundred sentences of one library
    # would bend the space for all the queries those sentences do not cover.
    train_text_head: bool = False
    # The same for the sound side of S_va: its pretrained projection keeps the audio tower's
    # similarities, which is what sound-alike search ranks by. Frozen by default, so training moves
    # the picture towards the sound and the sound-alike geometry stays the pretrained one (trained,
    # a 99-clip library bent it: sound -> video R@5 fell from 0.97 to 0.83 on the shared media).
    train_audio_head: bool = False
    # Which feature centres to set from the library's mean before training ("video", "audio").
    # Only the video centre by default: the audio feature is two unit-length blocks whose library
    # mean (estimated from few clips) mostly removes real signal; on the shared media, setting the
    # audio centre alone lowered sound-alike R@5 from 0.90 to 0.72.
    calibrate: tuple[str, ...] = ("video",)
    learn_temperature: bool = False
    weight_decay: float = 0.0
    warmup: float = 0.1
    checkpoint_every: int = 50
    # Fraction of the videos with sound held out for validation (never trained on; 0: none), and
    # how many epochs without a better validation loss end the run early (0: never).
    # ``patience_min_steps``: and at least this many steps since the best one (a small library
    # has epochs of one or two steps, and a few steps prove nothing).
    holdout: float = 0.2
    patience: int = 5
    patience_min_steps: int = 60
    # Noisy copies of the training clips' sound (noisy.py): ``noise_copies`` per clip, of at most
    # ``noise_max_seconds`` of sound, used instead of the stored sound with ``noise_probability``.
    # A query is a fresh microphone recording with a noise floor; the stored clips mostly are not.
    noise_copies: int = 2
    noise_probability: float = 0.5
    noise_max_seconds: float = 300.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs is None and self.minutes is None:
            self.epochs = DEFAULT_EPOCHS
        if self.batch_size < 2:
            raise TrainingError("batch_size must be at least 2 (a contrastive loss needs negatives)")
        if (self.epochs is not None and self.epochs <= 0) or (self.minutes is not None and self.minutes <= 0):
            raise TrainingError("epochs and minutes must be positive")
        if not 0.0 <= self.holdout < 0.5:
            raise TrainingError("holdout must be a fraction from 0 to 0.5")
        if self.noise_copies < 0 or not 0.0 <= self.noise_probability <= 1.0:
            raise TrainingError("noise_copies must be >= 0 and noise_probability from 0 to 1")
        self.weights = (float(self.weights[0]), float(self.weights[1]))
        if self.objective.startswith("gdt") and self.gdt_shift == 0:
            self.gdt_shift = 1  # GDT's time-shift transformation needs neighbouring clips in each batch

    def as_dict(self) -> dict:
        """JSON-serialisable (stored in checkpoints and in the published model's report)."""
        return {**asdict(self), "weights": list(self.weights), "calibrate": list(self.calibrate)}


@dataclass
class RunState:
    """Everything a resumed run needs besides the data."""

    step: int = 0
    elapsed_s: float = 0.0
    history: list[dict] = field(default_factory=list)


def saved_config(checkpoint: dict, device: str) -> TrainConfig:
    """A resumed run continues the interrupted run's schedule; only the device may change."""
    known = {f.name for f in fields(TrainConfig)}
    saved = {k: v for k, v in checkpoint["config"].items() if k in known}
    saved["calibrate"] = tuple(saved.get("calibrate", ("video",)))
    return TrainConfig(**{**saved, "weights": tuple(saved["weights"]), "device": device})
