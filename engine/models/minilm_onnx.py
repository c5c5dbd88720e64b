"""all-MiniLM-L6-v2 on ONNX Runtime, for the query path: half the NumPy forward's time.

A text query encodes three short sentences (engine.models.conse.QUERY_TEMPLATES), ~0.8 GFLOP;
NumPy runs it as ~40 separate array operations per layer at ~15 ms on one core, ONNX Runtime's
fused graph in ~7 ms, with the same vectors (max abs difference ~1e-7, tests/test_query_model.py).
The graph is exported once from the torch tower (engine.models.minilm) into the library's models
folder, named after the packaged weights it came from, by the first search that has torch at hand
(engine.models.query_model); until then, or without onnxruntime, the NumPy tower answers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from engine.models.minilm_np import SentenceTower, load_tokenizer

log = logging.getLogger(__name__)
OPSET = 17
DISABLE_ENV = "MMVSEARCH_TEXT_ONNX"  # "0": the NumPy tower (A/B benchmarks, debugging)


def onnx_path(models_dir: Path, model_dir: Path) -> Path:
    """Where the export of the packaged weights in ``model_dir`` lives: a new package version (other
    weights) gets a file of its own."""
    st = (model_dir / "model.safetensors").stat()
    key = hashlib.sha1(f"{model_dir.resolve()}|{st.st_size}|{st.st_mtime_ns}|{OPSET}".encode()).hexdigest()[:12]
    return Path(models_dir) / f"text-tower-{key}.onnx"


def export_minilm(model_dir: Path, path: Path) -> None:
    """Trace the torch tower into ``path`` (temp file, then rename: readers never see half a file)."""
    import torch

    from engine.models.minilm import load_minilm

    model, _ = load_minilm(model_dir)
    example = (torch.ones(3, 12, dtype=torch.int64), torch.ones(3, 12, dtype=torch.int64))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with warnings.catch_warnings():  # the TorchScript exporter is "legacy", and needs no onnx package
            warnings.simplefilter("ignore")
            torch.onnx.export(model, example, str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=["ids", "mask"], output_names=["features"],
                              dynamic_axes={"ids": {0: "batch", 1: "tokens"}, "mask": {0: "batch", 1: "tokens"},
                                            "features": {0: "batch"}})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class MiniLMOnnx(SentenceTower):
    """Sentence embeddings of texts on ONNX Runtime (one thread: a query is latency, and thread
    wake-ups cost more than they save at this size)."""

    def __init__(self, model_dir: Path, path: Path):
        import json

        import onnxruntime as ort

        self.pad_id = json.loads((model_dir / "config.json").read_text()).get("pad_token_id", 0)
        self.tokenizer = load_tokenizer(model_dir, self.pad_id)
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def forward(self, ids: np.ndarray, attention: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"ids": ids.astype(np.int64), "mask": attention.astype(np.int64)})[0]


def load_text_tower(model_dir: Path, models_dir: Path | None) -> SentenceTower:
    """The ONNX Runtime tower when its export exists and onnxruntime loads it, else NumPy."""
    from engine.models.minilm_np import MiniLMNumpy

    if models_dir is not None and os.environ.get(DISABLE_ENV) != "0":
        path = onnx_path(models_dir, model_dir)
        if path.exists():
            try:
                return MiniLMOnnx(model_dir, path)
            except Exception as exc:
                log.warning("the ONNX text tower %s did not load (%s); using NumPy", path.name, exc)
    return MiniLMNumpy(model_dir)


def ensure_export(model_dir: Path, models_dir: Path) -> None:
    """Export the tower once (needs torch); a failure only costs speed, so it is logged, not raised."""
    path = onnx_path(models_dir, model_dir)
    if path.exists():
        return
    try:
        export_minilm(model_dir, path)
    except Exception as exc:
        log.warning("could not export the text tower to ONNX (%s); queries use NumPy", exc)
