"""Stage-3 retrieval task: stage 2 (contrastive + distillation) plus topic classification heads (AISTAT).

Total = ``contrastive_weight * L_con + distill_weight * L_dist + cluster_weight * L_topic`` with
``cluster_weight`` = lambda2 = 0.05.  The topic count comes from the ``lasr cluster`` tables, read when the task
is built (so a stage-3 checkpoint reloads with heads of the right size); the tables are checked against the
training manifests in ``setup``, before the first step.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor

from lasr.data.cluster_tables import ClusterTables
from lasr.losses.contrastive import ContrastiveLoss
from lasr.losses.topics import TopicClassificationLoss
from lasr.models.dual_encoder import DualEncoder
from lasr.tasks.distill import DistillRetrievalTask
from lasr.tasks.schedule import WarmupCosineSchedule
from lasr.tasks.teacher_sources import TeacherSpec, batch_clip_keys, training_records

TEXT_LABELS = ("caption", "clip")


class ClusterDistillTask(DistillRetrievalTask):
    """:class:`DistillRetrievalTask` plus audio and text topic heads on the shared embedding.

    Args (besides DistillRetrievalTask's):
        clusters: output folder of ``lasr cluster`` on the training manifests.
        cluster_weight: lambda2, weight of the topic loss (AISTAT 0.05; unverified).
        text_labels: ``caption`` (each caption's own topic) or ``clip`` (the clip's majority topic).
    """

    def __init__(
        self,
        model: DualEncoder,
        clusters: str,
        loss: ContrastiveLoss | None = None,
        cluster_weight: float = 0.05,
        text_labels: str = "caption",
        teacher_embeddings: list[str] | None = None,
        online_teachers: list[TeacherSpec] | None = None,
        contrastive_weight: float = 1.0,
        distill_weight: float = 1.0,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        schedule: WarmupCosineSchedule | None = None,
        init_from: str | None = None,
        eval_chunk_size: int = 1024,
        multi_ks: list[int] = [16, 10],  # noqa: B006 (jsonargparse needs a concrete default)
        lr_multipliers: dict[str, float] | None = None,
    ):
        super().__init__(model, loss, teacher_embeddings, online_teachers, contrastive_weight, distill_weight,
                         optimizer, schedule, init_from, eval_chunk_size, multi_ks, lr_multipliers)
        if text_labels not in TEXT_LABELS:
            raise ValueError(f"text_labels must be one of {TEXT_LABELS}, got {text_labels!r}")
        self.cluster_tables = ClusterTables(clusters)
        self.cluster_weight, self.text_labels = float(cluster_weight), text_labels
        self.topic_loss = TopicClassificationLoss(model.embed_dim, self.cluster_tables.n_topics)

    def setup(self, stage: str) -> None:
        if stage == "fit":
            records, _ = training_records(self.trainer)
            if records is not None:
                self.cluster_tables.check_against(records)
        super().setup(stage)

    def term_weights(self) -> dict[str, float]:
        return dict(super().term_weights(), cluster_loss=self.cluster_weight)

    def loss_terms(self, batch: dict[str, Any], audio: Tensor, text: Tensor) -> dict[str, Tensor]:
        terms = super().loss_terms(batch, audio, text)
        audio_labels, text_labels = self.cluster_tables.labels(batch_clip_keys(batch), batch["caption"],
                                                               self.text_labels)
        audio_labels = torch.tensor(audio_labels, dtype=torch.long, device=audio.device)
        text_labels = torch.tensor(text_labels, dtype=torch.long, device=audio.device)
        terms.update(self.topic_loss(audio, text, audio_labels, text_labels))
        return terms
