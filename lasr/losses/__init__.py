"""Losses. Each returns a dict of named ``*_loss`` terms; the task sums them."""

from lasr.losses.contrastive import ContrastiveLoss, gather_features

__all__ = ["ContrastiveLoss", "gather_features"]
