"""all-MiniLM-L6-v2 forward pass in NumPy, for the query path.

A cold ``mmvsearch search --text`` must answer in about a second; ``import torch`` alone takes
several. A query is three short sentences (engine.models.conse.QUERY_TEMPLATES), for which a
NumPy forward of this 6-layer, 384-wide encoder costs a few milliseconds. It reads the same
packaged safetensors and tokenizer as engine.models.minilm (the torch version, used for indexing
and training); ``tests/test_query_model.py`` checks that both give the same vectors.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def normalise_query(text: str) -> str:
    """Users type file-name-like queries ('ApplyEyeMakeup', 'dog_barking'): split them into words."""
    text = text.replace("_", " ").replace("-", " ")
    return " ".join(_CAMEL.sub(" ", w) for w in text.split()).strip()


def load_tokenizer(model_dir: Path, pad_id: int = 0):
    """The model's tokenizers.Tokenizer with truncation and padding as sentence-transformers sets them."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding(pad_id=pad_id)
    return tokenizer


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to ~1e-7 (Abramowitz & Stegun 7.1.26); NumPy has none and SciPy costs a second to import."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x * np.float32(0.7071067811865476)))


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = np.square(x - mean).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


class SentenceTower:
    """Tokenising and batching shared by the query-path runners of MiniLM (NumPy, ONNX Runtime):
    a subclass sets ``tokenizer`` and ``pad_id`` and implements ``forward(ids, mask)``."""

    dim = 384
    tokenizer = None
    pad_id = 0

    def forward(self, ids: np.ndarray, attention: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(token ids, attention mask) [N, longest], padded as the tokenizer's own batch padding.

        One text at a time on purpose: ``encode_batch`` hands a query's three sentences to a Rust
        thread pool, whose wake-ups cost more than the work on a busy machine."""
        enc = [self.tokenizer.encode(normalise_query(t)) for t in texts]
        n = max(len(e.ids) for e in enc)
        ids = np.full((len(enc), n), self.pad_id, np.int64)
        mask = np.zeros((len(enc), n), np.int64)
        for row, e in enumerate(enc):
            ids[row, :len(e.ids)] = e.ids
            mask[row, :len(e.ids)] = e.attention_mask
        return ids, mask

    def features(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """[N, 384] float32, L2-normalised; texts are normalised as the torch tower does."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        out = []
        for i in range(0, len(texts), batch_size):
            ids, mask = self.tokenize(texts[i:i + batch_size])
            out.append(self.forward(ids, mask))
        return np.concatenate(out).astype(np.float32)


class MiniLMNumpy(SentenceTower):
    """Sentence embeddings (mean pooling, L2-normalised) of texts, float32, no torch."""

    def __init__(self, model_dir: Path):
        from safetensors.numpy import load_file

        cfg = json.loads((model_dir / "config.json").read_text())
        self.eps, self.heads = cfg["layer_norm_eps"], cfg["num_attention_heads"]
        self.n_layers = cfg["num_hidden_layers"]
        weights = load_file(str(model_dir / "model.safetensors"))
        self.w = {k: v.astype(np.float32, copy=False) for k, v in weights.items()}
        # Linear layers' weights stored transposed, contiguous: one plain GEMM per layer (about a
        # third faster than a transposed view multiplied into a 3-d batch at query sizes).
        self.wt = {k[: -len(".weight")]: np.ascontiguousarray(self.w.pop(k).T)
                   for k in list(self.w) if k.startswith("encoder.")
                   and k.endswith(("dense.weight", "self.query.weight", "self.key.weight", "self.value.weight"))}
        self.pad_id = cfg.get("pad_token_id", 0)
        self.tokenizer = load_tokenizer(model_dir, self.pad_id)

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        flat = x.reshape(-1, x.shape[-1]) @ self.wt[name] + self.w[name + ".bias"]
        return flat.reshape(*x.shape[:-1], flat.shape[-1])

    def _attention(self, x: np.ndarray, p: str, mask: np.ndarray) -> np.ndarray:
        b, n, d = x.shape
        h = self.heads
        split = lambda t: t.reshape(b, n, h, d // h).transpose(0, 2, 1, 3)
        q = split(self._linear(x, p + "self.query"))
        k = split(self._linear(x, p + "self.key"))
        v = split(self._linear(x, p + "self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(d // h)) + mask
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        att = (scores / scores.sum(axis=-1, keepdims=True)) @ v
        return self._linear(att.transpose(0, 2, 1, 3).reshape(b, n, d), p + "output.dense")

    def forward(self, ids: np.ndarray, attention: np.ndarray) -> np.ndarray:
        w, eps = self.w, self.eps
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][: ids.shape[1]]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        mask = np.where(attention == 0, np.float32(-np.inf), np.float32(0.0))[:, None, None, :]
        for i in range(self.n_layers):
            p = f"encoder.layer.{i}."
            x = _layer_norm(x + self._attention(x, p + "attention.", mask),
                            w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
            up = _gelu(self._linear(x, p + "intermediate.dense"))
            x = _layer_norm(x + self._linear(up, p + "output.dense"),
                            w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
        weights = attention[..., None].astype(np.float32)
        pooled = (x * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)

