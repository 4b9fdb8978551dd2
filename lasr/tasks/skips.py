"""Skip-count-report of bad training items: counted once per file per epoch and stage, with the reason."""

from __future__ import annotations

import logging
from typing import Iterable

import lightning as L
import torch.distributed as dist

log = logging.getLogger(__name__)

MAX_LISTED = 5  # the warning names this many bad files, then a count


class SkipTally:
    """Bad files seen in batches' ``skipped`` lists [(path, reason)], kept apart per stage until reported."""

    def __init__(self) -> None:
        self.files: dict[str, dict[str, str]] = {}

    def add(self, stage: str, skipped: Iterable[tuple[str, str]]) -> None:
        found = self.files.setdefault(stage, {})
        for path, reason in skipped:
            found.setdefault(path, reason)

    def count(self, stage: str) -> int:
        return len(self.files.get(stage, {}))

    def report(self, module: L.LightningModule, stage: str) -> int:
        """Log ``<stage>/skipped_items`` (distinct bad files on all ranks) and warn naming them; then reset.

        Called on every rank (the ranks' lists are gathered)."""
        found = self.files.pop(stage, {})
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            parts: list[dict[str, str]] = [{} for _ in range(dist.get_world_size())]
            dist.all_gather_object(parts, found)
            found = {path: reason for part in parts for path, reason in part.items()}
        module.log(f"{stage}/skipped_items", float(len(found)), rank_zero_only=False, sync_dist=False)
        if found and module.trainer.is_global_zero:
            shown = "; ".join(list(found.values())[:MAX_LISTED])
            more = f"; ... and {len(found) - MAX_LISTED} more" if len(found) > MAX_LISTED else ""
            log.warning("%s: skipped %d bad clip(s) this epoch: %s%s", stage, len(found), shown, more)
        return len(found)
