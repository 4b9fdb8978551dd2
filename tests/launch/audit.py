"""A test-only callback recording which training items every rank draws, batch by batch."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L


class BatchAudit(L.Callback):
    """Appends ``{"epoch", "step", "index": [...]}`` per training batch to ``<out>/rank<global rank>.jsonl``."""

    def __init__(self, out: str):
        self.out = Path(out)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        row = {"epoch": trainer.current_epoch, "step": trainer.global_step, "index": batch["index"].tolist()}
        with open(self.out / f"rank{trainer.global_rank}.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
