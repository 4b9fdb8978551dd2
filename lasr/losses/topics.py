"""Auxiliary topic classification (AISTAT stage 3): linear heads from the shared embedding to the caption topics.

The audio head predicts a clip's topic (majority topic of its captions), the text head a caption's topic; both
use cross-entropy that skips outliers (label -1).  The two sides are averaged.  The head form, its placement and
the averaging are lasr's reading of the paper summary (the paper body was not available).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

OUTLIER = -1


def _masked_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean CE over rows whose label is not -1; 0 (with a graph, so DDP sees the head used) when none is."""
    if bool((labels != OUTLIER).any()):
        return F.cross_entropy(logits.float(), labels, ignore_index=OUTLIER)
    return logits.sum() * 0.0


class TopicClassificationLoss(nn.Module):
    """Two linear heads ``embed_dim -> n_topics`` (audio and text) with outlier-skipping cross-entropy.

    Shape:
        audio_emb: (B, E); text_emb: (B', E); audio_labels: (B,) int64 in [-1, n_topics);
        text_labels: (B',) int64 in [-1, n_topics).
    Returns:
        ``{"cluster_loss": scalar}`` = mean of the audio and text cross-entropies.
    """

    def __init__(self, embed_dim: int, n_topics: int):
        super().__init__()
        if n_topics < 1:
            raise ValueError(f"n_topics must be >= 1 (the clustering found {n_topics} topics)")
        self.n_topics = n_topics
        self.audio_head = nn.Linear(embed_dim, n_topics)
        self.text_head = nn.Linear(embed_dim, n_topics)

    def forward(self, audio_emb: Tensor, text_emb: Tensor, audio_labels: Tensor,
                text_labels: Tensor) -> dict[str, Tensor]:
        for name, emb, labels in (("audio", audio_emb, audio_labels), ("text", text_emb, text_labels)):
            if emb.ndim != 2 or labels.shape != emb.shape[:1]:
                raise ValueError(f"expected {name}_emb (B, E) and {name}_labels (B,), got {tuple(emb.shape)} and "
                                 f"{tuple(labels.shape)}")
            if labels.numel() and (int(labels.min()) < OUTLIER or int(labels.max()) >= self.n_topics):
                raise ValueError(f"{name}_labels must lie in [-1, {self.n_topics}), got [{int(labels.min())}, "
                                 f"{int(labels.max())}]")
        audio_ce = _masked_cross_entropy(self.audio_head(audio_emb), audio_labels)
        text_ce = _masked_cross_entropy(self.text_head(text_emb), text_labels)
        return {"cluster_loss": 0.5 * (audio_ce + text_ce)}
