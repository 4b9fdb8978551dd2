"""Where a distillation task gets its teachers' embeddings for a training batch.

* :class:`PrecomputedTeachers`: tables written by ``lasr teachers`` (lookup by clip key and caption string);
* :class:`OnlineTeachers`: frozen teacher models run inside the task on the batch's own audio and captions
  (for users without a precompute step; costs a forward pass per teacher and step).

Both return one ``(audio (B, E_m), text (B, E_m))`` pair per teacher m for the batch's items.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torchaudio
from torch import Tensor

from lasr.data.manifest import ClipRecord
from lasr.data.teacher_store import TeacherTable, load_teacher_tables
from lasr.errors import DataError
from lasr.models.run_config import LoadedModel, load_dual_encoder

log = logging.getLogger(__name__)
_SHOWN = 5


def batch_clip_keys(batch: dict[str, Any]) -> list[str]:
    """Clip keys ``dataset/id`` of a training batch's items (the keys of the teacher tables)."""
    return [f"{dataset}/{clip_id}" for dataset, clip_id in zip(batch["dataset"], batch["audio_id"])]


class PrecomputedTeachers:
    """Teacher embeddings read from ``lasr teachers`` outputs (one folder per teacher, or a whole output)."""

    def __init__(self, paths: Sequence[str]):
        self.tables: list[TeacherTable] = load_teacher_tables(paths)
        for table in self.tables:
            log.info("teacher %s: %d clips, %d captions, %d-d", table.name, len(table.audio_keys),
                     len(table.texts), table.embed_dim)

    def check_coverage(self, records: Sequence[ClipRecord], texts: Sequence[str]) -> None:
        """Raise DataError naming each teacher that lacks a clip or caption the student trains on."""
        problems = []
        keys = [r.key for r in records]
        for table in self.tables:
            missing_keys, missing_texts = table.missing(keys, texts)
            if missing_keys or missing_texts:
                problems.append(
                    f"teacher {table.path}: {len(missing_keys)} of {len(set(keys))} training clips missing "
                    f"(first: {missing_keys[:_SHOWN]}), {len(missing_texts)} of {len(set(texts))} caption strings "
                    f"missing (first: {missing_texts[:_SHOWN]})")
        if problems:
            raise DataError("teacher embeddings do not cover the training data; run `lasr teachers` on the same "
                            "training manifests (and caption variants): " + "; ".join(problems))

    def __call__(self, batch: dict[str, Any], device: torch.device) -> list[tuple[Tensor, Tensor]]:
        keys = batch_clip_keys(batch)
        out = []
        for table in self.tables:
            audio, text = table.lookup(keys, batch["caption"])
            out.append((audio.to(device), text.to(device)))
        return out


@dataclass
class TeacherSpec:
    """A teacher checkpoint for online distillation and, if it does not carry its config, the config file."""

    checkpoint: str
    config: str | None = None


class OnlineTeachers:
    """Frozen teacher models in eval mode, kept outside the task's modules (not trained, not checkpointed).

    Args:
        specs: the teachers.
        source_rate: sample rate (Hz) of the batches' audio; each teacher gets it resampled to its own rate.
    """

    def __init__(self, specs: Sequence[TeacherSpec], source_rate: int):
        self.source_rate = source_rate
        self.teachers: list[LoadedModel] = [load_dual_encoder(s.checkpoint, s.config) for s in specs]
        for teacher in self.teachers:
            teacher.model.requires_grad_(False)
            log.info("online teacher %s: %d-d, %d Hz", teacher.checkpoint, teacher.model.embed_dim,
                     teacher.model.audio_sample_rate)

    @torch.no_grad()
    def __call__(self, batch: dict[str, Any], device: torch.device) -> list[tuple[Tensor, Tensor]]:
        out = []
        for teacher in self.teachers:
            model = teacher.model
            if next(model.parameters()).device != device:
                model.to(device)
            model.eval()  # stays frozen even if something called .train() on it
            wave = batch["audio"]
            if model.audio_sample_rate != self.source_rate:
                wave = torchaudio.functional.resample(wave, self.source_rate, model.audio_sample_rate)
            out.append((model.encode_audio(wave, batch["duration"]), model.encode_text(batch["caption"])))
        return out


def training_records(trainer: Any) -> tuple[list[ClipRecord] | None, Any]:
    """(records of the training dataset, caption policy) of the trainer's datamodule, when it exposes them."""
    datamodule = getattr(trainer, "datamodule", None)
    dataset = getattr(datamodule, "datasets", {}).get("train") if datamodule is not None else None
    records = getattr(dataset, "records", None)
    return (list(records) if records is not None else None), getattr(datamodule, "caption_policy", None)


def check_policy_enumerable(policy: Any) -> None:
    """Warn when the caption policy may serve strings that cannot be listed before training."""
    from lasr.data.captions import CaptionPolicy

    if policy is not None and type(policy) is not CaptionPolicy and not hasattr(policy, "variants"):
        log.warning("caption policy %s has no variants(record): captions it makes up cannot be checked before "
                    "training; one without a teacher embedding will stop training at its batch", type(policy).__name__)
