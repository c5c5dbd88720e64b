"""The pieces of the trainer: queue, data loading, batches, schedule, checkpoints, mixed precision."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.api import Library
from engine.errors import ModelError
from engine.index.db import to_blob
from engine.train.checkpoint import load_heads_state, save_heads
from engine.train.config import TrainConfig
from engine.train.data import epoch_order, load_training_data, make_batch
from engine.train.precision import mixed_precision
from engine.train.queue import KeyedQueue, ema_update, momentum_copy, related_mask
from engine.train.run import TrainingRun
from engine.train.schedule import lr_factor
from engine.train.synthetic import SyntheticSpec, fake_base_model, write_synthetic_library


@pytest.fixture()
def library(tmp_path):
    lib = Library(tmp_path / "lib")
    lib.model = fake_base_model()
    spec = SyntheticSpec(n_pairs=2, videos_per_pair=2, silent_every=2)
    write_synthetic_library(lib.db, spec, lib.model.config)
    yield lib
    lib.close()


def test_queue_is_a_fifo_ring_with_keys():
    q = KeyedQueue(4, 2)
    q.push(torch.ones(3, 2), torch.tensor([[1, 0], [1, 1], [1, 2]]))
    q.push(2 * torch.ones(2, 2), torch.tensor([[2, 0], [2, 1]]))
    vectors, keys = q.contents()
    assert len(q) == 4 and sorted(keys[:, 0].tolist()) == [1, 1, 2, 2]
    assert [k.tolist() for k in keys if k[0] == 1] == [[1, 1], [1, 2]]  # the oldest entry was overwritten
    assert vectors.sum().item() == 2 * 2 + 2 * 4


def test_related_mask_marks_the_clip_and_its_time_neighbours():
    batch = torch.tensor([[7, 3]])
    queue = torch.tensor([[7, 3], [7, 4], [7, 6], [8, 3]])
    assert related_mask(batch, queue, 0).tolist() == [[True, False, False, False]]
    assert related_mask(batch, queue, 1).tolist() == [[True, True, False, False]]


def test_ema_moves_the_twin_towards_the_online_module():
    online = torch.nn.Linear(2, 2)
    twin = momentum_copy(online)
    with torch.no_grad():
        online.weight.add_(1.0)
    before = twin.weight.clone()
    ema_update(twin, online, 0.9)
    assert torch.allclose(twin.weight, 0.9 * before + 0.1 * online.weight)
    assert not twin.weight.requires_grad


def test_schedule_warms_up_then_decays_to_zero():
    assert lr_factor(0.05) == pytest.approx(0.5)
    assert lr_factor(0.1) == pytest.approx(1.0)
    assert lr_factor(0.55) == pytest.approx(0.5)
    assert lr_factor(1.0) == pytest.approx(0.0, abs=1e-9)


def test_data_has_features_audio_gaps_and_sentence_windows(library):
    data = load_training_data(library.db, backbone_id=library.model.config.backbone_id)
    assert data.video.shape == (16, 2, 1280) and data.video.dtype == torch.float16
    assert data.has_audio.tolist() == [True] * 4 + [False] * 4 + [True] * 4 + [False] * 4
    # Sentences at 0-3 s and 8-11 s; with a 2 s window clip 1 (4-8 s) overlaps both, clip 3 (12-16 s) one.
    assert [len(s) for s in data.clip_sentences[:4]] == [1, 2, 1, 1]
    narrow = load_training_data(library.db, window=0.0)
    assert [len(s) for s in narrow.clip_sentences[:4]] == [1, 0, 1, 0]


def test_features_of_another_backbone_are_not_training_data(library):
    with pytest.raises(Exception, match="no stored clip features"):
        load_training_data(library.db, backbone_id="some-other-backbone")


def test_batch_gathers_positives_and_only_audio_rows(library):
    data = load_training_data(library.db)
    batch = make_batch(data, np.array([0, 1, 4, 5]), torch.device("cpu"))
    assert batch.audio_rows.tolist() == [0, 1] and batch.audio.shape == (2, library.model.config.audio_dim)
    assert batch.text_mask.shape == (4, len(batch.text))
    assert batch.text_mask.sum(dim=1).tolist() == [1, 2, 1, 2]


def test_epoch_order_is_reproducible_and_gdt_pairs_neighbours(library):
    data = load_training_data(library.db)
    a, b = epoch_order(data, 4, 3, seed=1), epoch_order(data, 4, 3, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert sorted(np.concatenate(a).tolist()) == list(range(16))
    pairs = np.concatenate(epoch_order(data, 4, 0, seed=1, gdt_shift=1)).reshape(-1, 2)
    keys = data.keys.numpy()
    assert all(keys[i, 0] == keys[j, 0] and abs(keys[i, 1] - keys[j, 1]) == 1 for i, j in pairs)


def test_heads_checkpoint_round_trip_and_rejects_other_files(tmp_path):
    heads = fake_base_model().heads
    path = tmp_path / "m.pt"
    save_heads(path, heads, "ft-x", "mmv-base", {"parent": "mmv-base-v1"})
    state = load_heads_state(path)
    assert state["model_id"] == "ft-x" and state["parent"] == "mmv-base-v1"
    fresh = fake_base_model(seed=1).heads
    fresh.load_state_dict(state["heads"])
    assert torch.equal(fresh.video_va.weight, heads.video_va.weight)
    assert not list(tmp_path.glob("*.tmp"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError):
        load_heads_state(tmp_path / "junk.pt")
    torch.save({"format": 99}, tmp_path / "future.pt")
    with pytest.raises(ModelError, match="not an mmvsearch checkpoint"):
        load_heads_state(tmp_path / "future.pt")


def test_no_autocast_or_loss_scaling_on_cpu():
    dtype, scaler = mixed_precision(torch.device("cpu"))
    assert dtype is None and not scaler.is_enabled()


def test_the_mixed_precision_step_runs_on_cpu_autocast(library):
    """The CUDA path's code (autocast + scaler + float32 losses) exercised with device="cpu"."""
    data = load_training_data(library.db)
    run = TrainingRun(TrainConfig(epochs=1, batch_size=8, device="cpu"), library.model.heads, data,
               torch.device("cpu"), "mmv-base-v1")
    run.amp_dtype = torch.bfloat16  # CPU autocast supports bf16: same code path as on a GPU
    before = run.heads.video_va.weight.clone()
    record = run.one_step(make_batch(data, np.arange(8), torch.device("cpu")), progress=0.5, rows=np.arange(8))
    assert math.isfinite(record["loss"]) and record["loss_nce"] > 0
    assert not torch.equal(before, run.heads.video_va.weight)
    assert run.heads.video_va.weight.dtype == torch.float32  # master weights stay in full precision


@pytest.mark.slow
def test_the_deep_mixed_precision_step_runs_on_cpu_autocast(library):
    """Deep mode's CUDA code path (tail + heads under autocast, cached float16 trunk) on the CPU."""
    from engine.models.vision_tail import pretrained_tail
    from engine.train.deep_parts import DeepParts

    data = load_training_data(library.db)
    trunk = torch.randn(len(data), data.video.shape[1], 192, 7, 7, generator=torch.Generator().manual_seed(0))
    deep = DeepParts(pretrained_tail(14).requires_grad_(True), trunk.half(), torch.arange(len(data)))
    run = TrainingRun(TrainConfig(epochs=1, batch_size=8, device="cpu", deep=True), library.model.heads, data,
               torch.device("cpu"), "mmv-base-v1", deep)
    run.amp_dtype = torch.bfloat16
    before = [p.detach().clone() for p in deep.tail.parameters()]
    record = run.one_step(make_batch(data, np.arange(8), torch.device("cpu")), progress=0.5, rows=np.arange(8))
    assert math.isfinite(record["loss"]) and record["loss_nce"] > 0
    after = list(deep.tail.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after))  # the tail learns too
    assert all(p.dtype == torch.float32 for p in after)
    assert run.optimizer.param_groups[1]["lr"] == pytest.approx(run.optimizer.param_groups[0]["lr"] * 0.1)


def test_vectors_of_another_text_tower_are_skipped(library):
    library.db.conn.execute("UPDATE transcripts SET vec = ? WHERE id = 1", (to_blob(np.ones(10)),))
    data = load_training_data(library.db)
    assert 1 not in data.sentence_ids.tolist()
