"""The retrieval task of every stage: a dual encoder trained on a list of weighted loss terms.

Stage 1 is the contrastive term alone, stage 2 adds distillation, stage 3 topic heads
(:mod:`lasr.tasks.terms`); any subset and combination works, hard negatives included.

Evaluation embeds every clip once and every caption once, gathers them across ranks (torchmetrics), removes
the duplicates the distributed sampler adds, and computes the official metrics once on the whole set.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor

from lasr.metrics.retrieval import (
    RetrievalEmbeddings,
    load_relevance_csv,
    resolve_relevance_for_records,
    retrieval_metrics,
)
from lasr.models.checkpoints import read_checkpoint
from lasr.models.dual_encoder import DualEncoder
from lasr.models.run_config import store_run_config
from lasr.tasks.legacy import upgrade_checkpoint
from lasr.tasks.schedule import WarmupCosineSchedule
from lasr.tasks.terms import Contrastive, LossTerm
from lasr.tasks.skips import SkipTally

log = logging.getLogger(__name__)


def chance_levels(n_audio: int, ks: tuple[int, ...] = (1, 5, 10), map_k: int = 10) -> dict[str, float]:
    """Expected text->audio R@k and mAP@k of a random ranking with one relevant clip among ``n_audio``."""
    out = {f"t2a/R@{k}": min(k, n_audio) / n_audio for k in ks}
    out[f"t2a/mAP@{map_k}"] = sum(1.0 / (r + 1) for r in range(min(map_k, n_audio))) / n_audio
    return out


def limited_test_setting(trainer: L.Trainer) -> str | None:
    """The trainer setting that cuts the test set short (``fast_dev_run`` / ``limit_test_batches``), or None."""
    if getattr(trainer, "fast_dev_run", False):
        return f"fast_dev_run={trainer.fast_dev_run}"
    limit = getattr(trainer, "limit_test_batches", 1.0)
    if limit is not None and not (isinstance(limit, float) and limit == 1.0):
        return f"limit_test_batches={limit}"
    return None


class RetrievalTask(L.LightningModule):
    """Audio-text retrieval; the objective is ``sum_i terms[i].weight * terms[i]`` (default: the DCASE 2025
    Task 6 baseline's contrastive loss alone).

    Args:
        model: the dual encoder.
        terms: the loss terms (:class:`~lasr.tasks.terms.LossTerm`, one per name), e.g. contrastive,
            distillation and topic heads; each is logged as ``train/loss/<name>``.
        optimizer: optimiser factory over the trainable parameters (paper config: AdamW, lr 2e-5, no decay).
        schedule: per-step warm-up + cosine schedule relative to the optimiser's lr.
        init_from: a checkpoint whose model weights initialise this model (e.g. stage 2 from stage 1).
        eval_chunk_size: query rows per chunk when computing the metrics (bounds evaluation memory).
        multi_ks: cut-offs of the DCASE 2025 multi-relevance mAP (test set with a relevance CSV).
        lr_multipliers: learning-rate multiplier per parameter-name prefix, e.g. ``{"model.text_encoder": 0.1}``
            (unlisted parameters use 1.0; the baseline uses one group, i.e. none).
    """

    def __init__(
        self,
        model: DualEncoder,
        terms: list[LossTerm] | None = None,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        schedule: WarmupCosineSchedule | None = None,
        init_from: str | None = None,
        eval_chunk_size: int = 1024,
        multi_ks: list[int] = [16, 10],  # noqa: B006 (jsonargparse needs a concrete default)
        lr_multipliers: dict[str, float] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["model", "terms"])
        self.model = model
        terms = [Contrastive()] if terms is None else list(terms)
        names = [term.name for term in terms]
        if not terms or len(set(names)) != len(names):
            raise ValueError(f"model.init_args.terms: need at least one loss term and one per name, got {names}")
        self.terms = torch.nn.ModuleDict({term.name: term for term in terms})
        for term in terms:
            term.bind(model)
        self.optimizer_factory = optimizer
        self.schedule = schedule or WarmupCosineSchedule()
        self.eval_chunk_size, self.multi_ks = eval_chunk_size, tuple(multi_ks)
        self.lr_multipliers = dict(lr_multipliers or {})
        self.val_embeddings, self.test_embeddings = RetrievalEmbeddings(), RetrievalEmbeddings()
        self.skipped = SkipTally()
        self.last_metrics: dict[str, dict[str, float]] = {}
        if init_from:
            self._load_weights(init_from)

    def _load_weights(self, path: str) -> None:
        state = read_checkpoint(path, "model.init_args.init_from: checkpoint")["state_dict"]
        state = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{path}: checkpoint does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
        log.info("initialised model weights from %s", path)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the run's model/data config so tools (``lasr teachers``, ``lasr ensemble``) need no --config."""
        store_run_config(self.trainer, checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Checkpoints of the former stage-2/3 task classes load into this task (renamed state keys)."""
        upgrade_checkpoint(checkpoint)

    # ---- set-up: every check that can fail runs before the first training step ----------------------------------
    def setup(self, stage: str) -> None:
        if stage == "fit":
            for term in self.terms.values():
                term.setup(self.trainer, self.model)

    # ---- training -------------------------------------------------------------------------------------------
    def loss_terms(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """(weighted total, logged values: ``loss/<term>`` unweighted, plus the terms' extra metrics) of a batch."""
        audio = self.model.encode_audio(batch["audio"], batch["duration"])
        text = self.model.encode_text(batch["caption"])
        total, logged = None, {}
        for name, term in self.terms.items():
            out = term(batch, audio, text, self.model)
            value = out.pop("loss")
            total = term.weight * value if total is None else total + term.weight * value
            logged[f"loss/{name}"] = value
            logged.update(out)
        return total, logged

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss, logged = self.loss_terms(batch)
        batch_size = len(batch["caption"])
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        self.log_dict({f"train/{k}": v for k, v in logged.items()}, batch_size=batch_size)
        self.log("train/tau", self.model.tau.detach().abs(), batch_size=batch_size)
        if "caption_augmented" in batch:  # share of LLM-written captions served, over all ranks
            self.log("train/augmented_caption_share", batch["caption_augmented"].float().mean(),
                     batch_size=batch_size, on_step=False, on_epoch=True, sync_dist=True)
        self.skipped.add("train", batch["skipped"])
        return loss

    def on_train_epoch_end(self) -> None:
        self.skipped.report(self, "train")

    # ---- evaluation -----------------------------------------------------------------------------------------
    def _eval_step(self, batch: dict[str, Any], store: RetrievalEmbeddings) -> None:
        audio = self.model.encode_audio(batch["audio"], batch["duration"])
        text = self.model.encode_text(batch["captions"])
        store.update(audio, batch["index"], text, batch["text_clip_index"], batch["text_slot"])
        if batch["skipped"]:  # evaluation datasets are strict: a substituted clip would change the metrics
            raise RuntimeError(f"evaluation batch replaced bad clips: {batch['skipped'][:3]}")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, self.val_embeddings)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, self.test_embeddings)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Embeddings of a clip batch: ``audio_emb`` (B, E), ``text_emb`` (T, E) with ids to match them."""
        return {
            "audio_id": batch["audio_id"], "dataset": batch["dataset"],
            "audio_emb": self.model.encode_audio(batch["audio"], batch["duration"]),
            "captions": batch["captions"], "text_clip_index": batch["text_clip_index"],
            "text_emb": self.model.encode_text(batch["captions"]),
        }

    def on_validation_epoch_end(self) -> None:
        self._finish_eval("val", self.val_embeddings)

    def on_test_epoch_end(self) -> None:
        self._finish_eval("test", self.test_embeddings)

    def _finish_eval(self, stage: str, store: RetrievalEmbeddings) -> None:
        gathered = store.compute()
        store.reset()
        relevant, query_rows = None, None
        datamodule = getattr(self.trainer, "datamodule", None)
        relevance = getattr(datamodule, "test_relevance", None) if stage == "test" else None
        limit = limited_test_setting(self.trainer) if relevance else None
        if limit:
            log.warning("multi-relevance mAP skipped: %s evaluates only part of the test set (%s)", limit, relevance)
        elif relevance:
            query_rows, relevant = resolve_relevance_for_records(
                load_relevance_csv(relevance), datamodule.eval_records(stage), gathered["clip_index"].tolist(),
                gathered["text_clip_index"].tolist(), gathered["text_slot"].tolist(), relevance)
        metrics = retrieval_metrics(
            gathered["audio_emb"], gathered["text_emb"], gathered["text_owner"],
            relevant=relevant, query_rows=query_rows, multi_ks=self.multi_ks, chunk_size=self.eval_chunk_size)
        metrics = {k: float(v) for k, v in metrics.items()}
        self.last_metrics[stage] = dict(metrics, n_audio=len(gathered["clip_index"]), n_text=len(gathered["text_owner"]))
        self.log_dict({f"{stage}/{k}": v for k, v in metrics.items()}, sync_dist=False)

    # ---- optimisation ---------------------------------------------------------------------------------------
    def _param_groups(self) -> list[dict[str, Any]]:
        """Trainable parameters grouped by lr: a term's own ``lr`` (absolute), else the optimiser's lr times the
        multiplier of the longest matching name prefix."""
        unknown = [p for p in self.lr_multipliers if not any(n.startswith(p) for n, _ in self.named_parameters())]
        if unknown:
            raise ValueError(f"model.init_args.lr_multipliers: no parameter names start with {unknown}")
        own = {f"terms.{name}.": term.lr for name, term in self.terms.items() if term.lr is not None}
        groups: dict[tuple[str, float], list[torch.nn.Parameter]] = {}
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            term = next((prefix for prefix in own if name.startswith(prefix)), None)
            if term is not None:
                groups.setdefault(("lr", own[term]), []).append(param)
                continue
            prefixes = [p for p in self.lr_multipliers if name.startswith(p)]
            scale = self.lr_multipliers[max(prefixes, key=len)] if prefixes else 1.0
            groups.setdefault(("lr_scale", scale), []).append(param)
        return [{"params": params, kind: value} for (kind, value), params in groups.items()]

    def configure_optimizers(self) -> dict[str, Any]:
        groups = self._param_groups()
        optimizer = self.optimizer_factory([{"params": g["params"]} for g in groups])
        for group, spec in zip(optimizer.param_groups, groups):
            group["lr"] = spec["lr"] if "lr" in spec else group["lr"] * spec["lr_scale"]
        # the schedule's min_lr is relative to the encoders' peak, so a term's own group does not shift it
        scaled = [group["lr"] for group, spec in zip(optimizer.param_groups, groups) if "lr_scale" in spec]
        max_lr = max(scaled or [group["lr"] for group in optimizer.param_groups])
        trainer = self.trainer
        if trainer.max_epochs and trainer.max_epochs > 0:
            steps_per_epoch = trainer.estimated_stepping_batches / trainer.max_epochs
        else:
            steps_per_epoch = max(1.0, float(trainer.num_training_batches))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: self.schedule.factor(step, steps_per_epoch, max_lr))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
