"""Language-queried source separation task: a ResUNet30 trained on on-the-fly mixtures, evaluated as DCASE 2024 T9.

The query encoder is frozen and kept out of the module tree (so it is neither optimised nor saved in
checkpoints); every query string of the DataModule is embedded once in :meth:`SeparationTask.setup`, and training
looks the vectors up. Checkpoints carry the separator's and the query encoder's arguments under
``lasr_separation``, so ``lasr separate`` can rebuild both.
"""

from __future__ import annotations

import csv
import functools
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor

from lasr.errors import LasrError
from lasr.losses.separation import SeparationLoss
from lasr.metrics.separation import separation_metrics
from lasr.models.separation.checkpoint import LASR_KEY, load_weights
from lasr.models.separation.query import QueryEmbeddingCache, QueryEncoder
from lasr.models.separation.resunet import ResUNet30
from lasr.tasks.skips import SkipTally
from lasr.utils.atomic import atomic_open

log = logging.getLogger(__name__)

# AudioSep / DCASE baseline optimiser (models/audiosep.py): AdamW with amsgrad, no weight decay
REFERENCE_ADAMW = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": True}
MEAN_METRICS = ("sdr", "sdri", "si_sdr", "si_sdri", "sdri_best_gain")
CSV_FIELDS = ("index", "source", "noise", "snr_db", "caption", "degenerate", "sdr", "sdri", "si_sdr", "si_sdri",
              "sdr_mixture", "sdri_best_gain")
SPECTROGRAM_RANGE_DB = 80.0  # dynamic range of the TensorBoard spectrogram images


@dataclass
class ConstantWarmupSchedule:
    """The reference ``constant_warm_up``: lr x 0.001 for ``warm_up_steps`` steps, then x 0.01, x 0.1, then x 1.

    ``levels`` are the successive multipliers, each held for ``warm_up_steps`` steps (reference: 10k steps).
    ``decay``: after the warm-up, ``"none"`` keeps x 1 (the reference); ``"cosine"`` lowers it along a half
    cosine to ``min_factor`` at the run's last step (``total_steps``, Lightning's estimate of the run's steps).
    """

    warm_up_steps: int = 10000
    levels: tuple[float, ...] = (0.001, 0.01, 0.1)
    decay: Literal["none", "cosine"] = "none"
    min_factor: float = 0.0

    def factor(self, step: int, total_steps: int | None = None) -> float:
        stage = step // max(self.warm_up_steps, 1)
        if stage < len(self.levels):
            return float(self.levels[stage])
        if self.decay == "none":
            return 1.0
        if total_steps is None:
            raise ValueError("schedule.decay: cosine needs the run's total steps")
        warm_end = self.warm_up_steps * len(self.levels)
        progress = min(1.0, (step - warm_end) / max(total_steps - warm_end, 1))
        return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


class SeparationTask(L.LightningModule):
    """Text-queried separation (DCASE 2024 Task 9 baseline recipe by default).

    Args:
        separator: the ResUNet30.
        query: frozen query encoder; its ``output_dim`` must equal ``separator.condition_size``.
        loss: waveform loss (default: L1, the reference).
        optimizer: optimiser factory over the separator's parameters (default: the reference AdamW,
            lr 1e-3, amsgrad, no weight decay).
        schedule: per-step lr multiplier (default: the reference constant warm-up, 10k-step stages).
        init_from: lasr or published (AudioSep / DCASE) checkpoint whose separator weights initialise this one.
        query_cache_path: file of cached query embeddings (reused across runs when the encoder matches).
        query_batch_size: captions per query-encoder call while filling the cache.
        log_examples: number of fixed validation mixtures (the first ones) logged to TensorBoard each epoch.
        results_dir: folder of the per-mixture results CSVs (default: the logger's folder).
    """

    def __init__(
        self,
        separator: ResUNet30,
        query: QueryEncoder,
        loss: SeparationLoss | None = None,
        optimizer: OptimizerCallable | None = None,
        schedule: ConstantWarmupSchedule | None = None,
        init_from: str | None = None,
        query_cache_path: str | None = None,
        query_batch_size: int = 64,
        log_examples: int = 4,
        results_dir: str | None = None,
    ):
        super().__init__()
        if query.output_dim != separator.condition_size:
            raise ValueError(f"the query encoder gives {query.output_dim}-d embeddings but the separator's "
                             f"condition_size is {separator.condition_size}; make them equal")
        self.save_hyperparameters(ignore=["separator", "query", "loss"])
        self.separator = separator
        object.__setattr__(self, "query_encoder", query)  # not a submodule: frozen, never saved or optimised
        self.loss = loss or SeparationLoss()
        self.optimizer_factory, self.schedule = optimizer, schedule or ConstantWarmupSchedule()
        self.query_cache_path, self.query_batch_size = query_cache_path, query_batch_size
        self.query_cache: QueryEmbeddingCache | None = None
        self.log_examples, self.results_dir = log_examples, results_dir
        self.metric_unit = "dB"  # read by the CLI's results table
        self.last_metrics: dict[str, dict[str, float]] = {}
        self.skipped = SkipTally()
        self._rows: list[dict[str, Any]] = []
        self.query_fingerprint = query.weights_fingerprint()  # recorded in checkpoints: the tower trained with
        if init_from:
            trained_with = (load_weights(self.separator, init_from).get("query") or {}).get("fingerprint")
            if trained_with and trained_with != self.query_fingerprint:
                raise LasrError(f"init_from {init_from} was trained with another query tower (weights fingerprint "
                                f"{trained_with}, this one {self.query_fingerprint})")
            log.info("initialised the separator from %s", init_from)

    # ---- queries ----------------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Embed every query string the DataModule can serve, once (the text tower never runs in training).

        Under DDP with a ``query_cache_path``, rank 0 embeds and writes the file while the other ranks wait, then
        read it (they never write it)."""
        strategy = self.trainer.strategy if self._trainer is not None else None
        shared = strategy is not None and strategy.world_size > 1 and bool(self.query_cache_path)
        if shared and not strategy.is_global_zero:
            strategy.barrier("query_cache")
            self.query_cache = None  # re-read the file rank 0 has just written
        if self.query_cache is None:
            self.query_cache = QueryEmbeddingCache(self.query_encoder, self.query_cache_path, self.query_batch_size,
                                                   writable=strategy is None or strategy.is_global_zero)
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        strings = datamodule.query_strings() if hasattr(datamodule, "query_strings") else set()
        device = strategy.root_device if strategy is not None else torch.device("cpu")
        self.query_encoder.to(device)
        computed = self.query_cache.add(strings)
        self.query_encoder.to("cpu")
        if shared and strategy.is_global_zero:
            strategy.barrier("query_cache")
        log.info("query embeddings: %d computed, %d cached in total", computed, len(self.query_cache))

    def conditions(self, captions: list[str]) -> Tensor:
        """(B,) query strings -> (B, condition_size) cached embeddings on this module's device."""
        if self.query_cache is None:
            self.query_cache = QueryEmbeddingCache(self.query_encoder, self.query_cache_path, self.query_batch_size)
        return self.query_cache.lookup(list(captions)).to(self.device)

    # ---- training ---------------------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        estimate = self.separator(batch["mixture"], self.conditions(batch["caption"]))
        terms = self.loss(estimate, batch["target"])
        loss = sum(value for name, value in terms.items() if name.endswith("_loss"))
        size = len(batch["caption"])
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, batch_size=size)
        self.skipped.add("train", batch["skipped"])
        return loss

    def on_train_epoch_end(self) -> None:
        self.skipped.report(self, "train")

    # ---- evaluation -------------------------------------------------------------------------------------------
    def separate_batch(self, mixture: Tensor, condition: Tensor, length: Tensor) -> Tensor:
        """(B, S) zero-padded mixtures -> (B, S) estimates, each computed on its own valid samples (as the DCASE
        evaluator runs one clip at a time); one batched call when all lengths are equal."""
        if bool((length == mixture.shape[-1]).all()):
            return self.separator(mixture, condition)
        estimate = torch.zeros_like(mixture)
        for i, n in enumerate(length.tolist()):
            estimate[i, :n] = self.separator(mixture[i: i + 1, :n], condition[i: i + 1])[0]
        return estimate

    def _eval_step(self, batch: dict[str, Any], stage: str) -> None:
        estimate = self.separate_batch(batch["mixture"], self.conditions(batch["caption"]), batch["length"])
        metrics = separation_metrics(estimate, batch["target"], batch["mixture"], batch["length"])
        for i, index in enumerate(batch["index"].tolist()):
            row = {"index": index, "source": batch["source"][i], "noise": batch["noise"][i],
                   "snr_db": float(batch["snr_db"][i]), "caption": batch["caption"][i],
                   "degenerate": bool(batch["degenerate"][i])}
            self._rows.append(row | {k: float(v[i]) for k, v in metrics.items()})
            if stage == "val" and index < self.log_examples and not self.trainer.sanity_checking:
                n = int(batch["length"][i])
                self._log_example(index, batch["mixture"][i, :n], estimate[i, :n], batch["target"][i, :n])

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Estimates of an evaluation batch: ``estimate`` (B, S) with ``length`` (B,) and the batch's ids."""
        estimate = self.separate_batch(batch["mixture"], self.conditions(batch["caption"]), batch["length"])
        return {"estimate": estimate, "length": batch["length"], "index": batch["index"], "caption": batch["caption"]}

    def on_validation_epoch_end(self) -> None:
        self._finish_eval("val")

    def on_test_epoch_end(self) -> None:
        self._finish_eval("test")

    def _gather_rows(self) -> list[dict[str, Any]]:
        rows = self._rows
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            parts: list[list[dict[str, Any]]] = [[] for _ in range(dist.get_world_size())]
            dist.all_gather_object(parts, rows)
            rows = [r for part in parts for r in part]
        unique = {r["index"]: r for r in rows}  # the distributed sampler repeats items to even out ranks
        return [unique[i] for i in sorted(unique)]

    def _finish_eval(self, stage: str) -> None:
        rows, self._rows = self._gather_rows(), []
        if not rows or self.trainer.sanity_checking:
            return
        means = {k: sum(r[k] for r in rows) / len(rows) for k in MEAN_METRICS}
        self.last_metrics[stage] = dict(means, n_mixtures=len(rows))
        self.log_dict({f"{stage}/{k}": v for k, v in means.items()}, sync_dist=False)
        # every rank asks: Trainer.log_dir is a broadcast under DDP (asked on rank 0 alone, the run hangs)
        folder = Path(self.results_dir or self.trainer.log_dir or self.trainer.default_root_dir)
        if self.trainer.is_global_zero:
            self._write_rows(stage, rows, folder)

    def _write_rows(self, stage: str, rows: list[dict[str, Any]], folder: Path) -> None:
        path = folder / f"separation_{stage}_epoch{self.current_epoch:03d}_step{self.global_step:07d}.csv"
        with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
            writer.writeheader()
            writer.writerows([{k: r[k] for k in CSV_FIELDS} for r in rows])
        log.info("%s: per-mixture results of %d mixtures in %s", stage, len(rows), path)

    def _log_example(self, index: int, mixture: Tensor, estimate: Tensor, target: Tensor) -> None:
        experiment = getattr(self.logger, "experiment", None)
        if not self.trainer.is_global_zero or not hasattr(experiment, "add_audio"):
            return
        rate, step = self.separator.sample_rate, self.global_step
        images = []
        for name, wave in (("mixture", mixture), ("estimate", estimate), ("target", target)):
            wave = wave.detach().float().cpu()
            experiment.add_audio(f"val_example_{index}/{name}", wave.clamp(-1, 1)[None], step, sample_rate=rate)
            images.append(self._spectrogram_image(wave))
        experiment.add_image(f"val_example_{index}/spectrograms (mixture | estimate | target)",
                             torch.cat(images, dim=1), step, dataformats="CHW")

    def _spectrogram_image(self, wave: Tensor) -> Tensor:
        """(S,) -> (1, F, T) log-magnitude image in [0, 1], low frequencies at the bottom."""
        window = torch.hann_window(self.separator.n_fft)
        spec = torch.stft(wave, self.separator.n_fft, self.separator.hop_length, window=window, return_complex=True)
        db = 20 * torch.log10(spec.abs() + 1e-5)
        db = db.clamp(min=float(db.max()) - SPECTROGRAM_RANGE_DB)
        image = (db - db.min()) / (db.max() - db.min()).clamp(min=1e-6)
        return image.flip(0)[None]

    # ---- checkpoints and optimisation -------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        query = {**self.query_encoder.spec(), "fingerprint": self.query_fingerprint}
        checkpoint[LASR_KEY] = {"format": 1, "separator": self.separator.config(), "query": query}

    def configure_optimizers(self) -> dict[str, Any]:
        params = [p for p in self.separator.parameters() if p.requires_grad]
        if self.optimizer_factory is None:
            optimizer = torch.optim.AdamW(params, **REFERENCE_ADAMW)
        else:
            optimizer = self.optimizer_factory(params)
        total_steps = int(self.trainer.estimated_stepping_batches) if self.schedule.decay != "none" else None
        factor = functools.partial(self.schedule.factor, total_steps=total_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}
