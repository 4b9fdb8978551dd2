"""Zero-shot evaluation of a dual encoder on a labelled set: top-1 accuracy (single-label) or mAP (multi-label),
per class and per fold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import Tensor

from lasr.data.manifest import ClipRecord
from lasr.models.dual_encoder import DualEncoder
from lasr.search.clips import DEFAULT_MAX_SECONDS, refs_from_records
from lasr.search.embed import DEFAULT_BATCH_SIZE, embed_refs
from lasr.zeroshot.classify import (
    average_precision,
    class_scores,
    confusion_matrix,
    encode_prompts,
    mean_ignoring_nan,
    per_class_accuracy,
)
from lasr.zeroshot.prompts import ClassPrompts


@dataclass
class ZeroShotResult:
    """``metric`` is ``accuracy`` (single-label) or ``mAP`` (multi-label, macro over classes with positives);
    ``overall`` pools every clip, ``per_fold`` is the metric on each fold's clips (fold-based sets only),
    ``per_class`` the class recall (single-label) or average precision (multi-label)."""

    labels: list[str]
    metric: str
    overall: float
    per_class: dict[str, float]
    per_fold: dict[int, float] = field(default_factory=dict)
    confusion: Tensor | None = None  # (C, C) rows = true class (single-label only)
    n_clips: int = 0

    @property
    def fold_mean(self) -> float | None:
        return sum(self.per_fold.values()) / len(self.per_fold) if self.per_fold else None


def class_list(records: Sequence[ClipRecord]) -> list[str]:
    return sorted({label for r in records for label in r.labels})


def _metric(scores: Tensor, relevant: Tensor, multi_label: bool) -> tuple[float, Tensor]:
    """(overall, per class) for (B, C) scores and (B, C) bool relevance."""
    if multi_label:
        per_class = average_precision(scores, relevant)
        return mean_ignoring_nan(per_class), per_class
    target = relevant.int().argmax(1)
    confusion = confusion_matrix(scores.argmax(1), target, scores.shape[1])
    return float(confusion.diagonal().sum() / confusion.sum()), per_class_accuracy(confusion)


def evaluate_scores(scores: Tensor, targets: Sequence[Sequence[str]], labels: Sequence[str],
                    folds: Sequence[int | None] | None = None, multi_label: bool | None = None) -> ZeroShotResult:
    """Metrics of (B, C) class ``scores`` against each clip's label list; ``multi_label`` defaults to whether
    any clip has more than one label."""
    if multi_label is None:
        multi_label = any(len(t) > 1 for t in targets)
    column = {label: i for i, label in enumerate(labels)}
    relevant = torch.zeros(scores.shape, dtype=torch.bool)
    for row, clip_labels in enumerate(targets):
        relevant[row, [column[x] for x in clip_labels]] = True
    overall, per_class = _metric(scores, relevant, multi_label)
    per_fold = {}
    for fold in sorted({f for f in folds or [] if f is not None}):
        rows = torch.tensor([f == fold for f in folds])
        per_fold[fold] = _metric(scores[rows], relevant[rows], multi_label)[0]
    confusion = None
    if not multi_label:
        confusion = confusion_matrix(scores.argmax(1), relevant.int().argmax(1), len(labels))
    return ZeroShotResult(list(labels), "mAP" if multi_label else "accuracy", overall,
                          dict(zip(labels, per_class.tolist())), per_fold, confusion, scores.shape[0])


@dataclass
class EmbeddedSet:
    """Audio embeddings (B, E) of the readable clips of a labelled set, and the clips that were skipped."""

    audio: Tensor
    records: list[ClipRecord]
    skipped: list[tuple[str, str]]


def embed_labelled(model: DualEncoder, records: Sequence[ClipRecord], max_seconds: float = DEFAULT_MAX_SECONDS,
                   batch_size: int = DEFAULT_BATCH_SIZE, workers: int = 0) -> EmbeddedSet:
    audio, kept, failed = embed_refs(model, refs_from_records(records), max_seconds, batch_size, workers)
    return EmbeddedSet(audio, [records[i] for i in kept], [(records[i].audio_path, why) for i, why in failed])


def zero_shot(model: DualEncoder, embedded: EmbeddedSet, prompts: ClassPrompts, aggregate: str = "mean",
              multi_label: bool | None = None) -> ZeroShotResult:
    """Classify the embedded clips against ``prompts`` (whose labels must cover every clip label)."""
    prompt_emb = encode_prompts(model, prompts)
    owner = torch.tensor(prompts.owner, dtype=torch.long)
    scores = class_scores(embedded.audio, prompt_emb, owner, len(prompts.labels), aggregate)
    return evaluate_scores(scores, [r.labels for r in embedded.records], prompts.labels,
                           [r.fold for r in embedded.records], multi_label)
