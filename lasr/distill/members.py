"""Ensemble members must be different models: two checkpoints holding the same weights are refused.

An ensemble (of teachers, or of submissions) that counts one model twice silently weights it double and
reports a diversity it does not have; e.g. Lightning's ``last.ckpt`` used to equal the best checkpoint.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Sequence

from lasr.errors import LasrError
from lasr.tasks.checkpoints import read_checkpoint, state_fingerprint


def weights_digest(checkpoint: str | Path) -> str:
    """Content hash (hex) of a checkpoint's ``state_dict``: equal iff the weights are equal."""
    return state_fingerprint(read_checkpoint(checkpoint).get("state_dict") or {})


def require_distinct(checkpoints: Sequence[str | Path], role: str = "ensemble members") -> None:
    """Raise :class:`LasrError` naming every group of ``checkpoints`` with identical weights."""
    groups: dict[str, list[str]] = defaultdict(list)
    for checkpoint in checkpoints:
        groups[weights_digest(checkpoint)].append(str(checkpoint))
    same = [files for files in groups.values() if len(files) > 1]
    if same:
        listed = "; ".join(" = ".join(files) for files in same)
        raise LasrError(f"{role} must be different models, but these checkpoints hold identical weights: {listed}")
