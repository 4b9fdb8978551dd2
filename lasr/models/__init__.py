"""Models: audio and text towers and the dual encoder that maps both into one space.

Names are imported lazily so that ``import lasr.models`` stays cheap (no transformers, hear21passt or timm
import until a class is used); configs may name either ``lasr.models.X`` or the defining module.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "AudioEncoder": "lasr.models.audio",
    "PaSSTEncoder": "lasr.models.audio.passt",
    "CNNEncoder": "lasr.models.audio.cnn",
    "TextEncoder": "lasr.models.text",
    "HFTextEncoder": "lasr.models.text",
    "DualEncoder": "lasr.models.dual_encoder",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
