"""What the ONNX Runtime stand-ins for torch modules share (vision_onnx: the CNN while indexing,
minilm_onnx: the text tower of queries): where exported graphs live, how one is written, how a
session is opened. Nothing here imports torch at module level: a text query must not pay for it.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

OPSET = 17


def cache_dir() -> Path:
    """Exported graphs, once per machine (they derive from packaged weights, not from a library)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("mmvsearch", appauthor=False)) / "onnx"


def write_graph(module, example: tuple, path: Path, inputs: list[str], outputs: list[str],
                dynamic_axes: dict) -> None:
    """Export ``module`` with torch's TorchScript exporter to ``path`` (a temporary file, then a
    rename: a reader never sees half a graph)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "legacy exporter", constant folding: notes, not for users
            torch.onnx.export(module, example, tmp, dynamo=False, opset_version=OPSET, input_names=inputs,
                              output_names=outputs, dynamic_axes=dynamic_axes)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)



def open_session(path: Path, threads: int, spinning: bool = True):
    """A CPU session. ``spinning=False`` when other threads of the job want the cores between
    kernels (indexing); a query, alone on its thread, keeps ONNX Runtime's default."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
