"""Microphone recording through PortAudio (``sounddevice``), with a live level for a meter.

Thread model: PortAudio calls ``_on_audio`` from its own thread; the GUI thread polls ``level``,
``elapsed`` and ``recording`` and calls ``stop()``. All shared state is guarded by one lock.

Samples are captured as int16: every input device supports it, and ALSA's ``plug`` layer passes
it through untouched (its float conversion path drops blocks on non-real-time inputs such as the
``file`` PCM that the tests use as a fake microphone).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from engine.errors import RecorderError

SAMPLE_RATE = 16000
_FIRST_AUDIO_TIMEOUT_S = 10.0  # a PulseAudio source may take 1-2 s before its first block


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as exc:  # the Python package is there but libportaudio is not
        raise RecorderError("the PortAudio library is missing; install it "
                            "(Debian/Ubuntu: apt install libportaudio2)") from exc
    except ImportError as exc:
        raise RecorderError("the 'sounddevice' package is not installed") from exc
    return sounddevice


def list_input_devices(refresh: bool = False) -> list[dict]:
    """Input devices: ``index``, ``name``, ``channels``, ``default`` (and ``sample_rate``, ``host_api``).

    PortAudio lists devices once per process; ``refresh=True`` re-scans (for a microphone plugged in
    later). Never refresh while a recording is running.
    """
    sd = _sounddevice()
    if refresh:
        sd._terminate()
        sd._initialize()
    try:
        devices = sd.query_devices()
        default_in = _default_input_index(sd)
        apis = sd.query_hostapis()
    except sd.PortAudioError as exc:
        raise RecorderError(f"cannot list audio devices: {exc}") from exc
    return [{"index": i, "name": d["name"], "channels": int(d["max_input_channels"]),
             "default": i == default_in, "sample_rate": float(d["default_samplerate"]),
             "host_api": apis[d["hostapi"]]["name"]}
            for i, d in enumerate(devices) if d["max_input_channels"] > 0]


def _default_input_index(sd: Any) -> int:
    try:
        return int(sd.default.device[0])
    except (TypeError, ValueError, IndexError):
        return -1


def resolve_input_device(device: int | str | None) -> dict:
    """The device to record from: an index, an exact or partial name, or None for the default."""
    inputs = list_input_devices()
    if not inputs:
        raise RecorderError("no microphone found: this computer has no audio input device")
    if device is None:
        chosen = next((d for d in inputs if d["default"]), inputs[0])
    elif isinstance(device, int) or (isinstance(device, str) and device.isdigit()):
        chosen = next((d for d in inputs if d["index"] == int(device)), None)
    else:
        chosen = next((d for d in inputs if d["name"] == device), None) or \
            next((d for d in inputs if device.lower() in d["name"].lower()), None)
    if chosen is None:
        names = ", ".join(f"{d['index']}: {d['name']}" for d in inputs)
        raise RecorderError(f"no input device {device!r}; available: {names}")
    return chosen


def _explain(exc: Exception, device_name: str) -> RecorderError:
    """Turn a PortAudio error into a message a user can act on."""
    text = str(exc)
    low = text.lower()
    if "busy" in low or "unavailable" in low or "-9985" in low:
        return RecorderError(f"the microphone '{device_name}' is busy: another program is using it ({text})")
    if "permission" in low or "denied" in low or "not permitted" in low:
        return RecorderError(f"permission to use the microphone '{device_name}' was denied; allow microphone "
                             f"access for this app in the system settings ({text})")
    if "invalid device" in low or "-9996" in low or "no default" in low:
        return RecorderError(f"the microphone '{device_name}' is not available ({text})")
    return RecorderError(f"cannot record from '{device_name}': {text}")


class Recorder:
    """Record mono audio from one input device until ``stop()`` or ``max_seconds``."""

    def __init__(self, device: int | str | None = None, sample_rate: int = SAMPLE_RATE,
                 max_seconds: float = 30.0):
        if sample_rate <= 0 or max_seconds <= 0:
            raise RecorderError("sample rate and maximum length must be positive")
        self.device = device
        self.sample_rate = int(sample_rate)
        self.max_seconds = float(max_seconds)
        self.device_name = ""
        self._lock = threading.Lock()
        self._full = threading.Event()
        self._blocks: list[np.ndarray] = []
        self._frames = 0
        self._max_frames = 0
        self._stream_rate = self.sample_rate
        self._level = 0.0
        self._stream: Any = None
        self._started_at = 0.0
        self._status_flags: list[str] = []

    # ---- control ------------------------------------------------------------------------------
    def start(self) -> None:
        """Open the device and begin capturing (returns at once; audio arrives in the background)."""
        if self.recording:
            raise RecorderError("already recording")
        sd = _sounddevice()
        info = resolve_input_device(self.device)
        self.device_name = info["name"]
        with self._lock:
            self._blocks, self._frames, self._level, self._status_flags = [], 0, 0.0, []
            self._full.clear()
        self._stream = self._open(sd, info)
        try:
            self._stream.start()
        except sd.PortAudioError as exc:
            self._close()
            raise _explain(exc, self.device_name) from exc
        self._started_at = time.monotonic()

    def _open(self, sd: Any, info: dict) -> Any:
        """Open at the device's own rate (resampled in stop()), else at the wanted rate.

        We resample ourselves (libswresample, band-limited) rather than trust the host's converter:
        ALSA's ``plug`` resampler is linear and, on inputs that are not paced in real time, skips data.
        """
        rates = list(dict.fromkeys(r for r in (int(info["sample_rate"]), self.sample_rate) if r > 0))
        last: Exception | None = None
        for rate in rates:
            try:
                stream = sd.InputStream(device=info["index"], channels=1, samplerate=rate, dtype="int16",
                                        callback=self._on_audio)
            except sd.PortAudioError as exc:
                last = exc
                continue
            self._stream_rate = rate
            self._max_frames = round(self.max_seconds * rate)
            return stream
        raise _explain(last or RuntimeError("unknown error"), self.device_name)

    def stop(self) -> np.ndarray:
        """Stop and return what was recorded: float32 mono at ``sample_rate`` (may be empty)."""
        self._close()
        with self._lock:
            blocks, rate = self._blocks, self._stream_rate
            self._blocks = []
            self._level = 0.0
        wave = (np.concatenate(blocks).astype(np.float32) / 32768.0) if blocks else np.zeros(0, np.float32)
        wave = wave[: round(self.max_seconds * rate)]
        if rate != self.sample_rate:
            from engine.media.audio import resample

            wave = resample(wave, rate, self.sample_rate)
        return wave

    def wait(self, timeout: float | None = None) -> bool:
        """Block until ``max_seconds`` of audio has arrived; False on timeout."""
        return self._full.wait(timeout)

    def _close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
            finally:
                stream.close()

    # ---- PortAudio thread ---------------------------------------------------------------------
    def _on_audio(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        block = indata[:, 0].copy()
        peak = float(np.abs(block.astype(np.float32)).max()) / 32768.0 if frames else 0.0
        with self._lock:
            if status:
                self._status_flags.append(str(status))
            room = self._max_frames - self._frames
            if room <= 0:
                return
            self._blocks.append(block[:room])
            self._frames += min(frames, room)
            self._level = min(1.0, peak)
            if self._frames >= self._max_frames:
                self._full.set()

    # ---- state for the GUI --------------------------------------------------------------------
    @property
    def level(self) -> float:
        """Peak of the latest block, 0..1 (draw it on a square-root or dB scale for a meter)."""
        with self._lock:
            return self._level

    @property
    def elapsed(self) -> float:
        """Seconds of audio captured so far."""
        with self._lock:
            return self._frames / self._stream_rate if self._stream_rate else 0.0

    @property
    def recording(self) -> bool:
        stream = self._stream
        return stream is not None and bool(stream.active) and not self._full.is_set()

    @property
    def warnings(self) -> list[str]:
        """PortAudio status flags seen (e.g. 'input overflow'): the audio may have gaps."""
        with self._lock:
            return list(self._status_flags)


def record(seconds: float, device: int | str | None = None, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Record ``seconds`` of audio and return float32 mono at ``sample_rate`` (blocking)."""
    rec = Recorder(device, sample_rate, max_seconds=seconds)
    rec.start()
    try:
        limit = seconds + _FIRST_AUDIO_TIMEOUT_S
        if not rec.wait(limit) and rec.elapsed == 0:
            raise RecorderError(f"no audio arrived from '{rec.device_name}' in {limit:.0f} s; "
                                "is the microphone muted or disconnected?")
    finally:
        wave = rec.stop()
    return wave
