"""The loss terms a :class:`~lasr.tasks.RetrievalTask` sums: its objective is a list of these, given in the config.

* :class:`Contrastive`: the DCASE 2025 baseline's multi-positive symmetric loss, with the batch's hard negatives
  (``batch["hard_negatives"]``, from ``AugmentedAudioTextDataModule``) as extra caption columns;
* :class:`Distillation`: SALSA soft targets from precomputed (``lasr teachers``) or online teachers;
* :class:`TopicHeads`: AISTAT stage 3, audio and text heads on the BERTopic topics of ``lasr cluster``.

A term wraps a loss of :mod:`lasr.losses` (which knows nothing of Lightning) with what the loss needs from the
batch, the model and the training data; checks that can fail run in :meth:`LossTerm.setup`, before the first step.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor, nn

from lasr.data.captions import student_caption_texts
from lasr.data.cluster_tables import ClusterTables
from lasr.losses.contrastive import ContrastiveLoss
from lasr.losses.distillation import DistillationLoss
from lasr.losses.topics import TopicClassificationLoss
from lasr.models.dual_encoder import DualEncoder
from lasr.tasks.teacher_sources import (
    OnlineTeachers, PrecomputedTeachers, TeacherSpec, batch_clip_keys, check_policy_enumerable, training_records,
)

log = logging.getLogger(__name__)

TEXT_LABELS = ("caption", "clip")


class LossTerm(nn.Module):
    """One weighted part of the objective, logged as ``train/loss/<name>`` (the unweighted value).

    A term may own parameters; they train with the encoders, or in their own optimiser group at ``self.lr``
    when that is set (the task's ``lr_multipliers`` do not apply to such a group).

    Args:
        weight: factor of this term in the total loss.
    """

    name = ""

    def __init__(self, weight: float = 1.0):
        super().__init__()
        if weight < 0:
            raise ValueError(f"{type(self).__name__}: weight must be >= 0, got {weight}")
        self.weight = float(weight)
        self.lr: float | None = None

    def bind(self, model: DualEncoder) -> None:
        """Build the parameters that depend on the model (the task calls this once, in its constructor)."""

    def setup(self, trainer: Any, model: DualEncoder) -> None:
        """Load and check what the term needs from the training data, before the first step (stage ``fit``)."""

    def forward(self, batch: dict[str, Any], audio: Tensor, text: Tensor, model: DualEncoder) -> dict[str, Tensor]:
        """``{"loss": unweighted scalar, <metric>: scalar, ...}`` for a batch with (B, E) student embeddings."""
        raise NotImplementedError


def hard_negative_inputs(captions: list[str | None], text: Tensor, model: Any) -> dict[str, Tensor]:
    """Embed the counterfactual captions (None = none for that row) into a (B, E) tensor + (B,) mask.

    Every rank builds the tensor through the same autograd path (even with no hard negative in its batch),
    so the loss can gather it with gradient.
    """
    mask = torch.tensor([c is not None for c in captions], dtype=torch.bool, device=text.device)
    emb = text.detach().new_zeros(text.shape) + 0.0 * text
    if mask.any():
        encoded = model.encode_text([c for c in captions if c is not None]).to(emb.dtype)
        emb = emb.index_put((mask.nonzero()[:, 0],), encoded)
    return {"hard_negative_emb": emb, "hard_negative_mask": mask}


class Contrastive(LossTerm):
    """The baseline's multi-positive symmetric contrastive loss, global over ranks.

    Args:
        weight: factor in the total (baseline and AISTAT: 1.0).
        hard_negative_weight: weight w of the batch's hard-negative columns (1 = NegCLIP; 0 ignores them).
        gather_with_grad: gather other ranks' embeddings with gradient.
    Extra output: ``hard_negative_accuracy`` when the batch brings hard negatives.
    """

    name = "contrastive"

    def __init__(self, weight: float = 1.0, hard_negative_weight: float = 1.0, gather_with_grad: bool = True):
        super().__init__(weight)
        self.loss = ContrastiveLoss(gather_with_grad=gather_with_grad, hard_negative_weight=hard_negative_weight)

    def forward(self, batch: dict[str, Any], audio: Tensor, text: Tensor, model: DualEncoder) -> dict[str, Tensor]:
        extra = {}
        if batch.get("hard_negatives") is not None and self.loss.hard_negative_weight > 0:
            extra = hard_negative_inputs(batch["hard_negatives"], text, model)
        out = dict(self.loss(audio, text, batch["audio_key"], model.logit_scale, **extra))
        return {"loss": out.pop("contrastive_loss"), **out}


class Distillation(LossTerm):
    """SALSA distillation: soft targets from the teachers' mean cosine matrix over the batch's clips x captions.

    Args:
        weight: factor in the total (AISTAT lambda = 1.0, unverified; SALSA: 1.0).
        teacher_embeddings: ``lasr teachers`` output folders (all teachers in each) or single teacher folders;
            checked against the training manifests (and caption variants) in ``setup``.
        online_teachers: teacher checkpoints run online instead (frozen, eval mode, not checkpointed).
        gather_with_grad: gather other ranks' student embeddings with gradient.
    """

    name = "distill"

    def __init__(self, weight: float = 1.0, teacher_embeddings: list[str] | None = None,
                 online_teachers: list[TeacherSpec] | None = None, gather_with_grad: bool = True):
        super().__init__(weight)
        if teacher_embeddings and online_teachers:
            raise ValueError("Distillation: set either teacher_embeddings (precomputed) or online_teachers, not both")
        if not (teacher_embeddings or online_teachers):
            raise ValueError("Distillation: no teachers configured: set teacher_embeddings (from `lasr teachers`) "
                             "or online_teachers, or leave the term out")
        self.teacher_embeddings = list(teacher_embeddings or [])
        self.online_teachers = list(online_teachers or [])
        self.loss = DistillationLoss(gather_with_grad=gather_with_grad)
        self.teachers: PrecomputedTeachers | OnlineTeachers | None = None

    def setup(self, trainer: Any, model: DualEncoder) -> None:
        if self.teachers is not None:
            return
        records, policy = training_records(trainer)
        if self.online_teachers:
            rate = getattr(getattr(trainer, "datamodule", None), "sample_rate", model.audio_sample_rate)
            self.teachers = OnlineTeachers(self.online_teachers, int(rate))
            return
        datamodule = getattr(trainer, "datamodule", None)
        if getattr(getattr(datamodule, "augment", None), "changes_audio", False):
            raise ValueError("precomputed teacher_embeddings describe the unmixed clips, but the data module's "
                             "augment block transforms or mixes training audio (a mixed item would get its first "
                             "clip's teacher): use online_teachers, or set every augment probability (and "
                             "llm_table) off")
        added = getattr(datamodule, "added_changes_audio", [])
        if added:
            raise ValueError(f"precomputed teacher_embeddings describe the plain clips, but data.added serves mixed "
                             f"items {added} (a mixed pair would get its first clip's teacher): use "
                             "online_teachers (they embed each batch's own audio and captions), or set the added "
                             "sets' weight to 0")
        self.teachers = PrecomputedTeachers(self.teacher_embeddings)
        if records is None:
            log.warning("the datamodule does not expose its training records; teacher coverage is checked per batch")
            return
        check_policy_enumerable(policy)
        self.teachers.check_coverage(records, student_caption_texts(records, policy))

    def forward(self, batch: dict[str, Any], audio: Tensor, text: Tensor, model: DualEncoder) -> dict[str, Tensor]:
        if self.teachers is None:
            raise RuntimeError("Distillation.setup() was not called (the task calls it at fit)")
        pairs = self.teachers(batch, audio.device)
        out = self.loss(audio, text, [a for a, _ in pairs], [t for _, t in pairs], model.logit_scale)
        return {"loss": out["distill_loss"]}


class TopicHeads(LossTerm):
    """AISTAT stage 3: linear audio and text heads from the shared embedding to the caption topics.

    The topic count comes from the ``lasr cluster`` tables, read when the term is built (so a checkpoint reloads
    with heads of the right size); ``setup`` checks the tables against the training manifests.

    Args:
        clusters: output folder of ``lasr cluster`` on the training manifests.
        weight: lambda2 (AISTAT 0.05, unverified).
        text_labels: ``caption`` (each caption's own topic) or ``clip`` (the clip's majority topic).
        lr: learning rate of the heads' own optimiser group. Not from the paper: the heads start from random
            weights while the encoders are pretrained, so they get a linear-probe rate (default 1e-3) instead of
            the encoders' 2e-5; None puts them in the encoders' groups.
    """

    name = "topics"

    def __init__(self, clusters: str, weight: float = 0.05, text_labels: str = "caption", lr: float | None = 1e-3):
        super().__init__(weight)
        if text_labels not in TEXT_LABELS:
            raise ValueError(f"TopicHeads: text_labels must be one of {TEXT_LABELS}, got {text_labels!r}")
        self.tables = ClusterTables(clusters)
        self.text_labels, self.lr = text_labels, lr
        self.heads: TopicClassificationLoss | None = None

    def bind(self, model: DualEncoder) -> None:
        self.heads = TopicClassificationLoss(model.embed_dim, self.tables.n_topics)

    def setup(self, trainer: Any, model: DualEncoder) -> None:
        records, _ = training_records(trainer)
        if records is not None:
            self.tables.check_against(records)

    def forward(self, batch: dict[str, Any], audio: Tensor, text: Tensor, model: DualEncoder) -> dict[str, Tensor]:
        audio_labels, text_labels = self.tables.labels(batch_clip_keys(batch), batch["caption"], self.text_labels)
        audio_labels = torch.tensor(audio_labels, dtype=torch.long, device=audio.device)
        text_labels = torch.tensor(text_labels, dtype=torch.long, device=audio.device)
        return {"loss": self.heads(audio, text, audio_labels, text_labels)["cluster_loss"]}
