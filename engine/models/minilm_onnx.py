"""all-MiniLM-L6-v2 on ONNX Runtime, for the query path: half the NumPy forward's time.

A text query encodes three short sentences (engine.models.conse.QUERY_TEMPLATES), ~0.8 GFLOP;
NumPy runs it as ~40 separate array operations per layer at ~15 ms on one core, ONNX Runtime's
fused graph in ~7 ms, with the same vectors (max abs difference ~1e-7, tests/test_query_model.py).
The graph is exported once per machine from the torch tower (engine.models.minilm) into the ONNX
cache (engine.models.onnx_files), named after the packaged weights, by the first search that has
torch at hand (engine.models.query_model); until then, or without onnxruntime, the NumPy tower
answers. A file that does not load is removed, so the next export writes it again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from engine.models.minilm_np import SentenceTower, load_tokenizer
from engine.models.onnx_files import OPSET, cache_dir, open_session, write_graph

log = logging.getLogger(__name__)
DISABLE_ENV = "MMVSEARCH_TEXT_ONNX"  # "0": the NumPy tower (A/B benchmarks, debugging)


def onnx_path(model_dir: Path, cache: Path | None = None) -> Path:
    """Where the export of the packaged weights in ``model_dir`` lives: other weights (a new
    package version) get a file of their own. Keyed by size and time, not a hash: a cold query
    must not read 90 MB to find it."""
    st = (model_dir / "model.safetensors").stat()
    key = hashlib.sha1(f"{model_dir.resolve()}|{st.st_size}|{st.st_mtime_ns}|{OPSET}".encode()).hexdigest()[:12]
    return Path(cache or cache_dir()) / f"text-tower-{key}.onnx"


def ensure_export(model_dir: Path, cache: Path | None = None) -> None:
    """Export the tower once (needs torch); a failure only costs speed, so it is logged, not raised."""
    path = onnx_path(model_dir, cache)
    if path.exists():
        return
    try:
        import torch

        from engine.models.minilm import load_minilm

        model, _ = load_minilm(model_dir)
        example = (torch.ones(3, 12, dtype=torch.int64), torch.ones(3, 12, dtype=torch.int64))
        write_graph(model, example, path, ["ids", "mask"], ["features"],
                    {"ids": {0: "batch", 1: "tokens"}, "mask": {0: "batch", 1: "tokens"}, "features": {0: "batch"}})
    except Exception as exc:  # any exporter failure leaves the NumPy tower in charge
        log.warning("could not export the text tower to ONNX (%s); queries use NumPy", exc)


class MiniLMOnnx(SentenceTower):
    """Sentence embeddings of texts on ONNX Runtime (one thread: a query is latency, and thread
    wake-ups cost more than they save at this size)."""

    def __init__(self, model_dir: Path, path: Path):
        self.pad_id = json.loads((model_dir / "config.json").read_text()).get("pad_token_id", 0)
        self.tokenizer = load_tokenizer(model_dir, self.pad_id)
        self.session = open_session(path, threads=1)

    def forward(self, ids: np.ndarray, attention: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"ids": ids.astype(np.int64), "mask": attention.astype(np.int64)})[0]


def load_text_tower(model_dir: Path, use_onnx: bool = True, cache: Path | None = None) -> SentenceTower:
    """The ONNX Runtime tower when wanted, exported and loadable, else NumPy."""
    from engine.models.minilm_np import MiniLMNumpy

    if use_onnx and os.environ.get(DISABLE_ENV) != "0":
        path = onnx_path(model_dir, cache)
        if path.exists():
            try:
                return MiniLMOnnx(model_dir, path)
            except Exception as exc:  # onnxruntime raises its own types; NumPy still answers
                log.warning("the ONNX text tower %s did not load (%s); using NumPy, exported again next time",
                            path.name, exc)
                path.unlink(missing_ok=True)
    return MiniLMNumpy(model_dir)
