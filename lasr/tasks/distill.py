"""Stage-2 retrieval task: contrastive loss plus distillation from an ensemble of stage-1 teachers.

Total loss = ``contrastive_weight * L_con + distill_weight * L_dist`` (AISTAT: 1.0 and 1.0; SALSA's stage 2 used
0.0 and 1.0).  Teachers come precomputed (``teacher_embeddings``: outputs of ``lasr teachers``, checked against
the training manifests in ``setup`` before the first step) or online (``online_teachers``: frozen checkpoints
run inside the task).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor

from lasr.data.captions import student_caption_texts
from lasr.losses.contrastive import ContrastiveLoss
from lasr.losses.distillation import DistillationLoss
from lasr.models.dual_encoder import DualEncoder
from lasr.tasks.retrieval import RetrievalTask
from lasr.tasks.schedule import WarmupCosineSchedule
from lasr.tasks.teacher_sources import (
    OnlineTeachers, PrecomputedTeachers, TeacherSpec, check_policy_enumerable, training_records,
)

log = logging.getLogger(__name__)


class DistillRetrievalTask(RetrievalTask):
    """:class:`RetrievalTask` plus SALSA distillation; the weights of the loss terms are constructor arguments.

    Args (besides RetrievalTask's):
        teacher_embeddings: ``lasr teachers`` output folders (all teachers in each) or single teacher folders.
        online_teachers: teacher checkpoints run online instead (frozen, eval mode); exclusive with the above.
        contrastive_weight: weight of the contrastive term (AISTAT 1.0).
        distill_weight: weight of the distillation term (AISTAT 1.0; unverified, see configs/stage2_distill.yaml).
    """

    def __init__(
        self,
        model: DualEncoder,
        loss: ContrastiveLoss | None = None,
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
        super().__init__(model, loss, optimizer, schedule, init_from, eval_chunk_size, multi_ks, lr_multipliers)
        if teacher_embeddings and online_teachers:
            raise ValueError("set either teacher_embeddings (precomputed) or online_teachers, not both")
        self.teacher_embeddings = list(teacher_embeddings or [])
        self.online_teachers = list(online_teachers or [])
        self.contrastive_weight, self.distill_weight = float(contrastive_weight), float(distill_weight)
        self.distillation = DistillationLoss()
        self.teachers: PrecomputedTeachers | OnlineTeachers | None = None

    # ---- set-up: every check that can fail runs before the first training step ----------------------------------
    def setup(self, stage: str) -> None:
        if stage != "fit" or self.teachers is not None or not self.distill_weight:
            return
        if not (self.teacher_embeddings or self.online_teachers):
            raise ValueError(f"distill_weight is {self.distill_weight} but no teachers are configured: set "
                             "model.init_args.teacher_embeddings (from `lasr teachers`) or online_teachers, "
                             "or distill_weight: 0")
        records, policy = training_records(self.trainer)
        if self.online_teachers:
            rate = getattr(getattr(self.trainer, "datamodule", None), "sample_rate", self.model.audio_sample_rate)
            self.teachers = OnlineTeachers(self.online_teachers, int(rate))
            return
        self.teachers = PrecomputedTeachers(self.teacher_embeddings)
        if records is None:
            log.warning("the datamodule does not expose its training records; teacher coverage is checked per batch")
            return
        check_policy_enumerable(policy)
        self.teachers.check_coverage(records, student_caption_texts(records, policy))

    # ---- training -------------------------------------------------------------------------------------------
    def term_weights(self) -> dict[str, float]:
        """Weight of each named loss term in the total."""
        return {"contrastive_loss": self.contrastive_weight, "distill_loss": self.distill_weight}

    def loss_terms(self, batch: dict[str, Any], audio: Tensor, text: Tensor) -> dict[str, Tensor]:
        """Named loss terms of a batch, given the student's (B, E) audio and text embeddings."""
        scale = self.model.logit_scale
        terms = dict(self.loss(audio, text, batch["audio_key"], scale))
        if self.distill_weight and self.teachers is not None:
            pairs = self.teachers(batch, audio.device)
            terms.update(self.distillation(audio, text, [a for a, _ in pairs], [t for _, t in pairs], scale))
        return terms

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        audio = self.model.encode_audio(batch["audio"], batch["duration"])
        text = self.model.encode_text(batch["caption"])
        terms = self.loss_terms(batch, audio, text)
        weights = self.term_weights()
        unknown = [name for name in terms if name.endswith("_loss") and name not in weights]
        if unknown:
            raise KeyError(f"no weight for loss terms {unknown}; known: {sorted(weights)}")
        loss = sum(weights[name] * value for name, value in terms.items() if name.endswith("_loss"))
        batch_size = len(batch["caption"])
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, batch_size=batch_size)
        self.log("train/tau", self.model.tau.detach().abs(), batch_size=batch_size)
        self.skipped.extend(batch["skipped"])
        return loss
