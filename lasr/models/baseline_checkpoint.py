"""Import the public DCASE 2025 Task 6 baseline checkpoint (CPJKU/dcase2025_task6_baseline) into lasr's dual encoder.

The baseline's ``AudioRetrievalModel`` (d25_t6/retrieval_module.py) names its parts::

    audio_embedding_model.model.model.*   PaSST (hear21passt ViT)   -> audio_encoder.passt.*
    audio_embedding_model.model.mel.*     AugmentMelSTFT            -> (no learned tensors; recomputed)
    audio_projection.{weight,bias}        Linear(768, 1024)         -> audio_projection.*
    text_embedding_model.*                RobertaModel (no pooler)  -> text_encoder.model.*
    text_projection.{weight,bias}         Linear(1024, 1024)        -> text_projection.*
    tau                                   (1,)                      -> tau ()

``torch.compile`` (the baseline's ``--compile``) inserts ``_orig_mod.`` into the names; it is removed. Every other
key is an error, and the result must load strictly into the configured model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lasr.errors import LasrError

BASELINE_RENAMES = (
    ("audio_embedding_model.model.model.", "audio_encoder.passt."),
    ("audio_projection.", "audio_projection."),
    ("text_embedding_model.", "text_encoder.model."),
    ("text_projection.", "text_projection."),
)
_RECOMPUTED = ("audio_embedding_model.model.mel.",)  # frontend buffers (window, pre-emphasis): not weights
_NON_PERSISTENT = ("text_encoder.model.embeddings.position_ids",)  # saved by older transformers only
_SHOWN = 5


def baseline_to_lasr(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The baseline's ``state_dict`` in lasr ``DualEncoder`` names. Raises :class:`LasrError` on unknown keys."""
    mapped: dict[str, Tensor] = {}
    unknown = []
    for key, value in state.items():
        key = key.replace("_orig_mod.", "")
        if key.startswith(_RECOMPUTED):
            continue
        if key == "tau":
            mapped["tau"] = value.reshape(())
            continue
        prefix = next((p for p, _ in BASELINE_RENAMES if key.startswith(p)), None)
        if prefix is None:
            unknown.append(key)
            continue
        mapped[dict(BASELINE_RENAMES)[prefix] + key[len(prefix):]] = value
    if unknown:
        raise LasrError(f"{len(unknown)} keys of the baseline checkpoint have no lasr counterpart "
                        f"(first: {unknown[:_SHOWN]}); is it a DCASE 2025 Task 6 baseline checkpoint?")
    return {k: v for k, v in mapped.items() if k not in _NON_PERSISTENT}


def load_baseline_state(model: torch.nn.Module, state: dict[str, Tensor], path: str | Path) -> None:
    """Load a baseline ``state_dict`` into ``model`` (a DualEncoder) strictly: names and shapes must match."""
    mapped = baseline_to_lasr(state)
    own = model.state_dict()
    missing = [k for k in own if k not in mapped]
    unexpected = [k for k in mapped if k not in own]
    shapes = [f"{k} {tuple(mapped[k].shape)} vs {tuple(own[k].shape)}"
              for k in own if k in mapped and mapped[k].shape != own[k].shape]
    problems = [f"{len(items)} {label} (first: {items[:_SHOWN]})"
                for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes))
                if items]
    if problems:
        raise LasrError(f"{path}: the baseline checkpoint does not fit the configured model (PaSST-S + "
                        f"RoBERTa-large, 1024-d): {'; '.join(problems)}")
    model.load_state_dict(mapped, strict=True)


def baseline_state_dict(stored: Any, path: str | Path) -> dict[str, Tensor]:
    """The ``state_dict`` of a loaded baseline Lightning checkpoint (or of a bare state dict)."""
    state = stored.get("state_dict", stored) if isinstance(stored, dict) else None
    if not isinstance(state, dict) or not any(str(k).startswith("audio_embedding_model.") for k in state):
        raise LasrError(f"{path}: not a DCASE 2025 Task 6 baseline checkpoint (no audio_embedding_model.* weights)")
    return state


def lightning_checkpoint(model: torch.nn.Module, lasr_config: dict[str, Any]) -> dict[str, Any]:
    """What ``lasr test --ckpt_path`` and the checkpoint tools read: ``model.*`` weights plus the run config."""
    import lightning

    return {"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
            "lasr_config": lasr_config, "pytorch-lightning_version": lightning.__version__,
            "epoch": 0, "global_step": 0}
