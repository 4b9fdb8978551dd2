"""Ensemble members must be different models: two checkpoints holding the same weights are refused.

An ensemble (of teachers, or of submissions) that counts one model twice silently weights it double and
reports a diversity it does not have; e.g. Lightning's ``last.ckpt`` used to equal the best checkpoint.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from lasr.errors import LasrError
from lasr.tasks.checkpoints import read_checkpoint


def weights_digest(checkpoint: str | Path) -> str:
    """Content hash (hex) of a checkpoint's ``state_dict`` (names and bytes): equal iff the weights are equal."""
    state = read_checkpoint(checkpoint).get("state_dict") or {}
    digest = hashlib.blake2b(digest_size=12)
    for name, tensor in sorted(state.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().reshape(-1).contiguous().view(-1).numpy().view("uint8").tobytes())
    return digest.hexdigest()


def require_distinct(checkpoints: Sequence[str | Path], role: str = "ensemble members") -> None:
    """Raise :class:`LasrError` naming every group of ``checkpoints`` with identical weights."""
    groups: dict[str, list[str]] = defaultdict(list)
    for checkpoint in checkpoints:
        groups[weights_digest(checkpoint)].append(str(checkpoint))
    same = [files for files in groups.values() if len(files) > 1]
    if same:
        listed = "; ".join(" = ".join(files) for files in same)
        raise LasrError(f"{role} must be different models, but these checkpoints hold identical weights: {listed}")
