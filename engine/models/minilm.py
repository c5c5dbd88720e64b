"""all-MiniLM-L6-v2 in plain PyTorch: a 6-layer BERT encoder, mean pooling, L2 normalisation.

Same weights (safetensors) and tokenizer (tokenizers' tokenizer.json) as sentence-transformers,
without importing it: that import alone takes ~6 s, which every cold search and app start would
pay. ``tests/test_minilm.py`` checks the output against sentence-transformers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class _Layer(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int, eps: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.attn_out = nn.Linear(dim, dim)
        self.attn_norm = nn.LayerNorm(dim, eps=eps)
        self.up = nn.Linear(dim, hidden)
        self.down = nn.Linear(hidden, dim)
        self.out_norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # x [B, L, D], mask [B, 1, 1, L]
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = self.attn_norm(x + self.attn_out(att.transpose(1, 2).reshape(b, n, d)))
        return self.out_norm(x + self.down(F.gelu(self.up(x))))


class MiniLM(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        d, eps = cfg["hidden_size"], cfg["layer_norm_eps"]
        self.word = nn.Embedding(cfg["vocab_size"], d)
        self.position = nn.Embedding(cfg["max_position_embeddings"], d)
        self.token_type = nn.Embedding(cfg["type_vocab_size"], d)
        self.norm = nn.LayerNorm(d, eps=eps)
        self.layers = nn.ModuleList(_Layer(d, cfg["num_attention_heads"], cfg["intermediate_size"], eps)
                                    for _ in range(cfg["num_hidden_layers"]))

    def forward(self, ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.norm(self.word(ids) + self.position(pos)[None] + self.token_type(torch.zeros_like(ids)))
        mask = torch.zeros(attention.shape, dtype=x.dtype, device=x.device)
        mask = mask.masked_fill(attention == 0, -math.inf)[:, None, None, :]
        for layer in self.layers:
            x = layer(x, mask)
        weights = attention.unsqueeze(-1).to(x.dtype)
        pooled = (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1)


def _convert(state: dict[str, torch.Tensor], n_layers: int) -> dict[str, torch.Tensor]:
    """Hugging Face BERT names -> ours (query/key/value fused into one matrix)."""
    out = {"word.weight": state["embeddings.word_embeddings.weight"],
           "position.weight": state["embeddings.position_embeddings.weight"],
           "token_type.weight": state["embeddings.token_type_embeddings.weight"],
           "norm.weight": state["embeddings.LayerNorm.weight"], "norm.bias": state["embeddings.LayerNorm.bias"]}
    for i in range(n_layers):
        p, o = f"encoder.layer.{i}.", f"layers.{i}."
        for kind in ("weight", "bias"):
            qkv = [state[f"{p}attention.self.{n}.{kind}"] for n in ("query", "key", "value")]
            out[o + "qkv." + kind] = torch.cat(qkv)
            out[o + "attn_out." + kind] = state[f"{p}attention.output.dense.{kind}"]
            out[o + "attn_norm." + kind] = state[f"{p}attention.output.LayerNorm.{kind}"]
            out[o + "up." + kind] = state[f"{p}intermediate.dense.{kind}"]
            out[o + "down." + kind] = state[f"{p}output.dense.{kind}"]
            out[o + "out_norm." + kind] = state[f"{p}output.LayerNorm.{kind}"]
    return out


def load_minilm(model_dir: Path) -> tuple[MiniLM, object]:
    """(model in eval mode, tokenizer with truncation and padding set)."""
    from safetensors.torch import load_file

    from engine.models.minilm_np import load_tokenizer

    cfg = json.loads((model_dir / "config.json").read_text())
    model = MiniLM(cfg)
    model.load_state_dict(_convert(load_file(str(model_dir / "model.safetensors")), cfg["num_hidden_layers"]))
    tokenizer = load_tokenizer(model_dir, cfg.get("pad_token_id", 0))
    return model.eval().requires_grad_(False), tokenizer
