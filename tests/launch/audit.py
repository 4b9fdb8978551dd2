"""Test-only callbacks: one records which training items every rank draws, batch by batch; one sends the process
a signal at a given step (a simulated SIGKILL or SLURM pre-emption)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import lightning as L


class BatchAudit(L.Callback):
    """Appends ``{"epoch", "step", "index", "caption", "audio_sum"}`` per training batch to
    ``<out>/rank<global rank>.jsonl`` (one line per batch, closed at once: the line survives a SIGKILL).

    ``caption`` and ``audio_sum`` (per-item sum of the waveform) show the random per-item draws (caption policy,
    crop, mixture), not only the order of the items."""

    def __init__(self, out: str):
        self.out = Path(out)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        audio = batch.get("audio", batch.get("mixture"))
        row = {"epoch": trainer.current_epoch, "step": trainer.global_step, "index": batch["index"].tolist(),
               "caption": list(batch.get("caption", [])),
               "audio_sum": [round(float(x), 3) for x in audio.flatten(1).sum(1)] if audio is not None else []}
        with open(self.out / f"rank{trainer.global_rank}.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


class SignalAt(L.Callback):
    """Sends the signal ``name`` (e.g. ``SIGKILL``, ``SIGUSR1``) to this process when training step ``step``
    starts (after :class:`BatchAudit`, listed before it, recorded the batch)."""

    def __init__(self, step: int, name: str = "SIGKILL"):
        self.step, self.signum = step, getattr(signal, name)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)
