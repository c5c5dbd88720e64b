"""FAC heads: shapes, normalisation, and the initialisation that makes the untrained model work."""

import torch
import torch.nn.functional as F

from engine.models.config import ModelConfig
from engine.models.conse import conse_embed, imagenet_classes
from engine.models.heads import FACHeads

CFG = ModelConfig(name="test")


def make_heads(seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(1000, CFG.vision_dim, generator=g) * 0.05
    b = torch.zeros(1000)
    class_text = F.normalize(torch.randn(1000, CFG.vat_dim, generator=g), dim=-1)
    return FACHeads(CFG, w, b, class_text)


def test_shapes_and_unit_norm():
    heads = make_heads()
    v = heads.project_video(torch.randn(5, 2, CFG.vision_dim))
    a = heads.project_audio(torch.randn(5, CFG.audio_dim))
    t = heads.project_text(F.normalize(torch.randn(5, CFG.text_dim), dim=-1))
    assert v["va"].shape == (5, CFG.va_dim) and v["vat"].shape == (5, CFG.vat_dim)
    assert a["va"].shape == (5, CFG.va_dim) and t.shape == (5, CFG.vat_dim)
    for x in (v["va"], v["vat"], a["va"], a["vat"], t):
        assert torch.allclose(x.norm(dim=-1), torch.ones(5), atol=1e-5)


def test_untrained_video_vat_is_exactly_conse_and_text_head_is_identity():
    heads = make_heads()
    vfeat = torch.randn(3, 2, CFG.vision_dim)
    logits = F.linear(vfeat, heads.classifier_weight, heads.classifier_bias)
    expected = F.normalize(conse_embed(logits, heads.class_text, CFG.conse_topk).mean(dim=1), dim=-1)
    assert torch.allclose(heads.project_video(vfeat)["vat"], expected, atol=1e-5)
    t = F.normalize(torch.randn(4, CFG.text_dim), dim=-1)
    assert torch.allclose(heads.project_text(t), t, atol=1e-6)


def test_va_projection_keeps_cosine_similarity_roughly():
    heads = make_heads()
    x = torch.randn(50, CFG.vision_dim)
    va = heads.project_video(x[:, None].repeat(1, 2, 1))["va"]
    before = F.normalize(x, dim=-1) @ F.normalize(x, dim=-1).T
    after = va @ va.T
    assert (before - after).abs().mean() < 0.05


def test_conse_votes_only_with_the_top_classes():
    class_text = torch.eye(4)
    logits = torch.tensor([[10.0, 9.0, -5.0, -5.0]])
    emb = conse_embed(logits, class_text, topk=2)
    assert emb[0, 2] == 0 and emb[0, 3] == 0 and emb[0, 0] > emb[0, 1] > 0


def test_heads_are_the_same_on_every_machine():
    a, b = make_heads(), make_heads()
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


def test_imagenet_class_names_ship_with_the_project():
    classes = imagenet_classes()
    assert len(classes) == 1000 and classes[0][1].startswith("tench") and all(c[2] for c in classes[:10])


def test_audio_head_reads_the_centred_whisper_mean_and_keeps_its_cosines_exactly():
    centre = torch.randn(CFG.audio_head_dim)
    g = torch.Generator().manual_seed(1)
    heads = FACHeads(CFG, torch.zeros(1000, CFG.vision_dim), torch.zeros(1000),
                     F.normalize(torch.randn(1000, CFG.vat_dim, generator=g), dim=-1), centre)
    stored = torch.randn(6, CFG.audio_dim, generator=g)  # Whisper mean | std
    va = heads.project_audio(stored)["va"]
    v2 = torch.cat([stored, torch.randn(6, 1280, generator=g)], dim=1)  # backbone v2: + spectrogram CNN
    assert torch.allclose(va, heads.project_audio(v2)["va"], atol=1e-6)  # the CNN half was never read
    noisy = stored.clone()
    noisy[:, CFG.audio_head_dim:] = torch.randn(6, CFG.audio_dim - CFG.audio_head_dim, generator=g)
    assert torch.allclose(va, heads.project_audio(noisy)["va"], atol=1e-6)
    x = F.normalize(stored[:, : CFG.audio_head_dim] - centre, dim=-1)
    assert torch.allclose(va @ va.T, x @ x.T, atol=1e-5)  # semi-orthogonal 384 -> 1024: an isometry


def test_shipped_audio_centre_fits_the_config():
    from engine.models.audio import load_audio_centre

    centre = load_audio_centre(CFG.audio_centre)
    assert centre.shape == (CFG.audio_head_dim,) and centre.dtype.name == "float32"
    assert 0 < float((centre**2).sum()) ** 0.5 < 100


def test_shipped_audio_centre_is_the_one_of_heads_version_2():
    """The centre is part of the packaged model mmv-base-v2: changing it needs a new heads_version
    (libraries then re-project), never a silent edit."""
    import hashlib

    from engine.resources import resource_path

    assert CFG.heads_version == 2 and CFG.audio_centre == "whisper_mean_centre_v2.npy"
    digest = hashlib.sha256(resource_path("models", CFG.audio_centre).read_bytes()).hexdigest()
    assert digest == "9bd1869d95ef9f0c2597412f391229feba01ac6372cbad45c2dc6779d6cf48b1"
