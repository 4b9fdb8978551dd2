"""Stage-1 retrieval task: a dual encoder trained with the multi-positive contrastive loss.

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

from lasr.losses.contrastive import ContrastiveLoss
from lasr.metrics.retrieval import (
    RetrievalEmbeddings,
    load_relevance_csv,
    resolve_relevance_for_records,
    retrieval_metrics,
)
from lasr.models.checkpoints import read_checkpoint
from lasr.models.dual_encoder import DualEncoder
from lasr.models.run_config import store_run_config
from lasr.tasks.schedule import WarmupCosineSchedule

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
    """Contrastive audio-text retrieval (DCASE 2025 Task 6 baseline recipe by default).

    Args:
        model: the dual encoder.
        loss: contrastive loss (gathered over ranks).
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
        loss: ContrastiveLoss | None = None,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        schedule: WarmupCosineSchedule | None = None,
        init_from: str | None = None,
        eval_chunk_size: int = 1024,
        multi_ks: list[int] = [16, 10],  # noqa: B006 (jsonargparse needs a concrete default)
        lr_multipliers: dict[str, float] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["model", "loss"])
        self.model = model
        self.loss = loss or ContrastiveLoss()
        self.optimizer_factory = optimizer
        self.schedule = schedule or WarmupCosineSchedule()
        self.eval_chunk_size, self.multi_ks = eval_chunk_size, tuple(multi_ks)
        self.lr_multipliers = dict(lr_multipliers or {})
        self.val_embeddings, self.test_embeddings = RetrievalEmbeddings(), RetrievalEmbeddings()
        self.skipped: list[tuple[str, str]] = []
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

    # ---- training -------------------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        audio = self.model.encode_audio(batch["audio"], batch["duration"])
        text = self.model.encode_text(batch["caption"])
        extra = self._hard_negatives(batch["hard_negatives"], text) if "hard_negatives" in batch else {}
        terms = self.loss(audio, text, batch["audio_key"], self.model.logit_scale, **extra)
        loss = sum(value for name, value in terms.items() if name.endswith("_loss"))
        batch_size = len(batch["caption"])
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, batch_size=batch_size)
        self.log("train/tau", self.model.tau.detach().abs(), batch_size=batch_size)
        self.skipped.extend(batch["skipped"])
        return loss

    def _hard_negatives(self, captions: list[str | None], text: Tensor) -> dict[str, Tensor]:
        """Embed the counterfactual captions (None = none for that row) into a (B, E) tensor + (B,) mask.

        Every rank builds the tensor through the same autograd path (even with no hard negative in its batch),
        so the loss can gather it with gradient.
        """
        mask = torch.tensor([c is not None for c in captions], dtype=torch.bool, device=text.device)
        emb = text.detach().new_zeros(text.shape) + 0.0 * text
        if mask.any():
            encoded = self.model.encode_text([c for c in captions if c is not None]).to(emb.dtype)
            emb = emb.index_put((mask.nonzero()[:, 0],), encoded)
        return {"hard_negative_emb": emb, "hard_negative_mask": mask}

    def on_train_epoch_end(self) -> None:
        self._report_skipped("train")

    def _report_skipped(self, stage: str) -> None:
        count = torch.tensor(float(len(self.skipped)), device=self.device)
        total = self.all_gather(count).sum()
        self.log(f"{stage}/skipped_items", total, rank_zero_only=False, sync_dist=False)
        if self.skipped:
            shown = "; ".join(reason for _, reason in self.skipped[:5])
            log.warning("%s: skipped %d bad item(s) on this rank this epoch: %s", stage, len(self.skipped), shown)
        self.skipped = []

    # ---- evaluation -----------------------------------------------------------------------------------------
    def _eval_step(self, batch: dict[str, Any], store: RetrievalEmbeddings) -> None:
        audio = self.model.encode_audio(batch["audio"], batch["duration"])
        text = self.model.encode_text(batch["captions"])
        store.update(audio, batch["index"], text, batch["text_clip_index"], batch["text_slot"])
        self.skipped.extend(batch["skipped"])

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
        self._report_skipped(stage)

    # ---- optimisation ---------------------------------------------------------------------------------------
    def _param_groups(self) -> list[dict[str, Any]]:
        """Trainable parameters grouped by lr multiplier (longest matching name prefix wins)."""
        unknown = [p for p in self.lr_multipliers if not any(n.startswith(p) for n, _ in self.named_parameters())]
        if unknown:
            raise ValueError(f"model.init_args.lr_multipliers: no parameter names start with {unknown}")
        groups: dict[float, list[torch.nn.Parameter]] = {}
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            prefixes = [p for p in self.lr_multipliers if name.startswith(p)]
            scale = self.lr_multipliers[max(prefixes, key=len)] if prefixes else 1.0
            groups.setdefault(scale, []).append(param)
        return [{"params": params, "lr_scale": scale} for scale, params in groups.items()]

    def configure_optimizers(self) -> dict[str, Any]:
        groups = self._param_groups()
        optimizer = self.optimizer_factory([{"params": g["params"]} for g in groups])
        for group, spec in zip(optimizer.param_groups, groups):
            group["lr"] = group["lr"] * spec["lr_scale"]
        max_lr = max(group["lr"] for group in optimizer.param_groups)
        trainer = self.trainer
        if trainer.max_epochs and trainer.max_epochs > 0:
            steps_per_epoch = trainer.estimated_stepping_batches / trainer.max_epochs
        else:
            steps_per_epoch = max(1.0, float(trainer.num_training_batches))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: self.schedule.factor(step, steps_per_epoch, max_lr))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
