"""Published encoder checkpoints: read them without running code from them, and load state dicts strictly.

Published checkpoints are often more than tensors: fairseq files (EAT) pickle an omegaconf config, numpy scalars
and training meters next to the weights. ``torch.load(weights_only=True)`` refuses those classes; the official
loaders then use a full unpickler, which would run arbitrary code from a downloaded file. Here every class the file
names is replaced by an inert stand-in (:class:`~lasr.models.checkpoints.OpaqueObject`, by
``read_checkpoint(..., trusted=False)``), so the tensors load with torch's restricted unpickler and no foreign code
runs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from lasr.errors import LasrError
from lasr.models.checkpoints import OpaqueObject

_log = logging.getLogger(__name__)


def plain_config(node: Any) -> Any:
    """Best-effort plain dicts/lists/values from a pickled config (e.g. an omegaconf ``DictConfig`` stand-in).

    omegaconf containers keep their children under ``_content`` and leaf nodes their value under ``_val``.
    """
    if isinstance(node, OpaqueObject):
        state = node.opaque_state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
            state = state[0]  # (dict state, slot state)
        if isinstance(state, dict):
            for field in ("_content", "_val"):
                if field in state:
                    return plain_config(state[field])
        return node.opaque_args[0] if len(node.opaque_args) == 1 else None  # e.g. an Enum rebuilt from its value
    if isinstance(node, dict):
        return {key: plain_config(value) for key, value in node.items()}
    if isinstance(node, (list, tuple)):
        return [plain_config(value) for value in node]
    return node


def load_state_strict(model: nn.Module, state: dict[str, Tensor], path: str | Path, what: str, hint: str) -> None:
    """``model.load_state_dict(state, strict=True)``, with a :class:`LasrError` naming missing/unexpected keys."""
    expected, given = set(model.state_dict()), set(state)
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if missing or unexpected:
        raise LasrError(
            f"{path} does not match the {what} model: {len(missing)} missing keys {missing[:5]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:5]}; {hint}"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:  # shape mismatch: weights of another size
        raise LasrError(f"{path} does not fit the {what} model: {err}") from None
    _log.info("loaded %s weights from %s", what, path)
