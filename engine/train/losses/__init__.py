"""Contrastive losses of the MMV objective, one per module, each documented with tensor shapes."""

from engine.train.losses.milnce import mil_nce
from engine.train.losses.nce import symmetric_nce

__all__ = ["mil_nce", "symmetric_nce"]
