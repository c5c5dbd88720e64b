"""The self-supervised losses, one per module, each documented with tensor shapes and tested
against a naive loop implementation (tests/test_losses.py, tests/test_losses_family.py)."""

from engine.train.losses.avlnet import audio_text_mms
from engine.train.losses.barlow import barlow_twins
from engine.train.losses.gdt import gdt_loss
from engine.train.losses.milnce import mil_nce
from engine.train.losses.nce import symmetric_nce
from engine.train.losses.ntxent import nt_xent
from engine.train.losses.swav import Prototypes, sinkhorn, swav_loss

__all__ = ["Prototypes", "audio_text_mms", "barlow_twins", "gdt_loss", "mil_nce", "nt_xent", "sinkhorn",
           "swav_loss", "symmetric_nce"]
