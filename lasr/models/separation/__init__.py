"""Language-queried separation models: the ResUNet30 separator, its checkpoint loaders and frozen query encoders.

Names are imported lazily (``transformers`` loads only when a query encoder is used).
"""

from __future__ import annotations

import importlib

_LAZY = {
    "ResUNet30": "lasr.models.separation.resunet",
    "load_separator": "lasr.models.separation.checkpoint",
    "load_weights": "lasr.models.separation.checkpoint",
    "published_to_lasr": "lasr.models.separation.checkpoint",
    "lasr_to_published": "lasr.models.separation.checkpoint",
    "SeparatorCheckpointError": "lasr.models.separation.checkpoint",
    "QueryEncoder": "lasr.models.separation.query",
    "ClapTextQuery": "lasr.models.separation.query",
    "HFTextQuery": "lasr.models.separation.query",
    "RetrievalTextQuery": "lasr.models.separation.query",
    "QueryEmbeddingCache": "lasr.models.separation.query",
    "build_query_encoder": "lasr.models.separation.query",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
