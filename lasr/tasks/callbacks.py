"""Lightning callbacks lasr adds to every run.

:class:`LogProgress` is the progress report of runs without Lightning's bar (``enable_progress_bar: false``,
as in the demo and cluster configs, whose output goes to log files): a line every ``interval_s`` seconds
during training, validation and testing (count, %, rate, ETA) and one line per epoch with its duration.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from lasr.utils.progress import log_interval

log = logging.getLogger(__name__)


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _total(value: Any) -> float:
    """A loader's batch count (Lightning gives a number, a list per loader, or inf)."""
    if isinstance(value, (list, tuple)):
        return float(sum(value))
    return float(value) if value is not None else math.inf


class LogProgress(L.Callback):
    """Plain progress lines for logs; silent when Lightning's own progress bar is on.

    Args:
        interval_s: seconds between lines within a loop (default: ``LASR_PROGRESS_INTERVAL`` or 30 s).
        metrics: metric names shown in the epoch line when logged (default: ``train/loss`` and every
            ``val/`` metric a checkpoint callback monitors).
    """

    def __init__(self, interval_s: float | None = None, metrics: list[str] | None = None):
        self.interval_s = log_interval() if interval_s is None else interval_s
        self.metrics = metrics
        self._start: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._fit_start = 0.0

    @staticmethod
    def _active(trainer: L.Trainer) -> bool:
        return trainer.progress_bar_callback is None and not trainer.sanity_checking

    def _begin(self, stage: str) -> None:
        self._start[stage] = self._last[stage] = time.monotonic()

    @rank_zero_only
    def _tick(self, trainer: L.Trainer, stage: str, done: int, total: float) -> None:
        now = time.monotonic()
        if not self._active(trainer) or now - self._last.get(stage, now) < self.interval_s:
            return
        self._last[stage] = now
        elapsed = now - self._start[stage]
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else math.inf
        share = f" ({100.0 * done / total:.0f}%)" if math.isfinite(total) and total else ""
        where = f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs} " if stage == "train" else ""
        count = f"{done}/{int(total)}" if math.isfinite(total) else str(done)
        log.info("%s%s: batch %s%s, %.2f batch/s, elapsed %s, ETA %s", where, stage, count, share, rate,
                 _clock(elapsed), _clock(eta))

    # ---- training -------------------------------------------------------------------------------------------
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fit_start = time.monotonic()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._begin("train")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._tick(trainer, "train", batch_idx + 1, _total(trainer.num_training_batches))

    def _metric_names(self, trainer: L.Trainer) -> list[str]:
        if self.metrics is not None:
            return list(self.metrics)
        names = ["train/loss"]
        for callback in trainer.checkpoint_callbacks:
            monitor = getattr(callback, "monitor", None)
            if monitor and monitor not in names:
                names.append(monitor)
        return names

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # every rank reads callback_metrics: metrics logged with sync_dist are reduced there (a collective), so
        # reading them on rank 0 alone hangs a DDP run; only rank 0 prints
        if not self._active(trainer) or "train" not in self._start:
            return
        now = time.monotonic()
        seconds = now - self._start["train"]
        epochs_done = trainer.current_epoch + 1
        total_elapsed = now - self._fit_start
        remaining = (trainer.max_epochs - epochs_done) * total_elapsed / epochs_done if trainer.max_epochs else math.inf
        values = trainer.callback_metrics
        shown = ", ".join(f"{name} {float(values[name]):.4g}" for name in self._metric_names(trainer) if name in values)
        if not trainer.is_global_zero:
            return
        log.info("epoch %d/%s done in %s (%d steps in all)%s; elapsed %s, ETA %s", epochs_done,
                 trainer.max_epochs, _clock(seconds), trainer.global_step, f": {shown}" if shown else "",
                 _clock(total_elapsed), _clock(remaining if trainer.max_epochs and trainer.max_epochs > 0 else math.inf))

    # ---- evaluation -----------------------------------------------------------------------------------------
    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._begin("val")

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._tick(trainer, "val", batch_idx + 1, _total(trainer.num_val_batches))

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self._begin("test")

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._tick(trainer, "test", batch_idx + 1, _total(trainer.num_test_batches))

    @rank_zero_only
    def on_test_epoch_end(self, trainer, pl_module) -> None:
        if self._active(trainer) and "test" in self._start:
            log.info("test done in %s", _clock(time.monotonic() - self._start["test"]))

    def on_predict_epoch_start(self, trainer, pl_module) -> None:
        self._begin("predict")

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._tick(trainer, "predict", batch_idx + 1, _total(trainer.num_predict_batches))
