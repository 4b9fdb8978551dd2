"""Zero-shot scoring: class embeddings from prompts, aggregation over prompts, and the metrics.

Shapes: B clips, P prompts, C classes, E embedding size. Embeddings are unit vectors; scores are cosine
similarities (the model's logit scale does not change rankings, so it is left out).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lasr.models.dual_encoder import DualEncoder
from lasr.models.embedding import embed_texts
from lasr.zeroshot.prompts import ClassPrompts

AGGREGATES = ("mean", "max")
PROMPT_BATCH = 64  # prompts encoded at once


@torch.no_grad()
def encode_prompts(model: DualEncoder, prompts: ClassPrompts, batch_size: int = PROMPT_BATCH) -> Tensor:
    """(P, E) unit text embeddings of ``prompts.texts``."""
    return embed_texts(model, list(prompts.texts), batch_size)


def class_scores(audio: Tensor, prompt_emb: Tensor, owner: Tensor, n_classes: int, aggregate: str = "mean") -> Tensor:
    """Score of every clip for every class.

    Args:
        audio: (B, E) unit audio embeddings.
        prompt_emb: (P, E) prompt embeddings (normalised here).
        owner: (P,) int64 class index of each prompt; every class needs at least one prompt.
        aggregate: ``mean``: one class vector = re-normalised mean of its normalised prompt embeddings
            (CLIP / ReCLAP); ``max``: the best similarity over the class's prompts.

    Returns:
        (B, C) scores.
    """
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
    counts = torch.bincount(owner, minlength=n_classes)
    if (counts == 0).any():
        raise ValueError(f"classes without prompts: {torch.nonzero(counts == 0).flatten().tolist()}")
    prompt_emb = F.normalize(prompt_emb.float(), dim=-1)
    if aggregate == "mean":
        sums = torch.zeros(n_classes, prompt_emb.shape[1]).index_add_(0, owner, prompt_emb)
        return audio.float() @ F.normalize(sums, dim=-1).T
    similarity = audio.float() @ prompt_emb.T  # (B, P)
    scores = torch.full((audio.shape[0], n_classes), float("-inf"))
    return scores.scatter_reduce(1, owner.expand_as(similarity), similarity, reduce="amax")


def confusion_matrix(predicted: Tensor, target: Tensor, n_classes: int) -> Tensor:
    """(C, C) int64 counts: row = true class, column = predicted class."""
    return torch.bincount(target * n_classes + predicted, minlength=n_classes * n_classes).view(n_classes, n_classes)


def per_class_accuracy(confusion: Tensor) -> Tensor:
    """(C,) recall of each class (NaN for classes absent from the data)."""
    totals = confusion.sum(dim=1).double()
    return confusion.diagonal().double() / totals.where(totals > 0, torch.tensor(float("nan")))


def average_precision(scores: Tensor, relevant: Tensor) -> Tensor:
    """(C,) average precision of each class ranking the B clips by ``scores`` (B, C) against the (B, C) bool
    ``relevant``; NaN for classes with no positive clip."""
    order = scores.argsort(dim=0, descending=True)
    hits = relevant.gather(0, order).double()  # (B, C) relevance in ranked order
    precision_at = hits.cumsum(0) / torch.arange(1, hits.shape[0] + 1, dtype=torch.float64)[:, None]
    positives = hits.sum(0)
    return (precision_at * hits).sum(0) / positives.where(positives > 0, torch.tensor(float("nan")))


def mean_ignoring_nan(values: Tensor) -> float:
    values = values[~torch.isnan(values)]
    return float(values.mean()) if values.numel() else float("nan")
