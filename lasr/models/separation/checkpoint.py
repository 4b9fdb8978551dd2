"""Load separator weights: lasr checkpoints and the published AudioSep / DCASE 2024 T9 baseline layout.

Published layout (Lightning ``.ckpt`` with ``state_dict``, or a plain / Hugging Face state dict), e.g.::

    ss_model.base.encoder_block1.conv_block1.bn1.weight         -> encoder_block1.conv_block1.bn1.weight
    ss_model.film.encoder_block1->conv_block1->beta1.weight     -> encoder_block1.conv_block1.beta1.weight
    ss_model.film.decoder_block1->beta1.bias                    -> decoder_block1.beta1.bias
    ss_model.base.stft.conv_real.weight  (F, 1, n_fft)          -> dropped (our STFT has no weights; gives n_fft)
    ss_model.base.istft.{conv_real,conv_imag}.weight, ola_window -> dropped
    query_encoder.*  (the whole CLAP model)                     -> dropped

A published file does not record its sample rate or hop; both follow from ``n_fft`` for the two published
recipes (:data:`PUBLISHED_STFT`). A lasr checkpoint stores the separator's arguments under ``lasr_separation``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor

from lasr.errors import LasrError
from lasr.models.checkpoints import read_checkpoint
from lasr.models.separation.resunet import ResUNet30

log = logging.getLogger(__name__)

PUBLISHED_PREFIX = "ss_model."
QUERY_PREFIX = "query_encoder."
LASR_KEY = "lasr_separation"  # checkpoint entry written by SeparationTask.on_save_checkpoint
LASR_PREFIX = "separator."  # SeparationTask stores the ResUNet30 under this attribute
STFT_KEYS = ("sample_rate", "n_fft", "hop_length")
# n_fft -> the recipe that published it (the file itself holds no rate or hop)
PUBLISHED_STFT: dict[int, dict[str, Any]] = {
    1024: {"sample_rate": 16000, "n_fft": 1024, "hop_length": 160, "recipe": "DCASE 2024 Task 9 baseline"},
    2048: {"sample_rate": 32000, "n_fft": 2048, "hop_length": 320, "recipe": "AudioSep"},
}


class SeparatorCheckpointError(LasrError):
    """A separator checkpoint is unreadable or does not fit the configured model."""


@dataclass
class LoadedSeparator:
    """A separator rebuilt from a checkpoint: the model (eval mode), how to rebuild its query encoder, provenance."""

    model: ResUNet30
    query: dict[str, Any] | None  # {"class_path", "init_args"} for lasr checkpoints; None for published ones
    kind: str  # "lasr" or "published"
    stft: dict[str, Any] = field(default_factory=dict)


def describe_stft(settings: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={settings[k]}" for k in STFT_KEYS if settings.get(k) is not None)


def read_state(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint (by :func:`lasr.models.checkpoints.read_checkpoint`): a Lightning dict, or
    ``{"state_dict": ...}`` for plain / safetensors state dicts."""
    data = read_checkpoint(path, error=SeparatorCheckpointError)
    if isinstance(data, Mapping) and "state_dict" in data:
        return dict(data)
    if isinstance(data, Mapping) and all(isinstance(v, Tensor) for v in data.values()):
        return {"state_dict": dict(data)}
    raise SeparatorCheckpointError(f"{path}: no state_dict in the checkpoint")


def is_published_layout(state: Mapping[str, Tensor]) -> bool:
    return any(k.startswith((PUBLISHED_PREFIX + "base.", "base.")) for k in state)


def published_stft(state: Mapping[str, Tensor], source: str = "checkpoint") -> dict[str, Any]:
    """STFT settings of a published state dict, from the STFT kernel (or ``bn0``) shape."""
    state = _strip(state, PUBLISHED_PREFIX)
    if "base.stft.conv_real.weight" in state:
        n_fft = int(state["base.stft.conv_real.weight"].shape[-1])
    elif "base.bn0.weight" in state:
        n_fft = 2 * (int(state["base.bn0.weight"].shape[0]) - 1)
    else:
        raise SeparatorCheckpointError(f"{source}: no base.stft / base.bn0 tensors; not an AudioSep ResUNet30")
    return dict(PUBLISHED_STFT.get(n_fft, {"n_fft": n_fft}))


def _strip(state: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    if any(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return dict(state)


def published_to_lasr(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename a published ResUNet30 state dict to :class:`ResUNet30`'s names (STFT kernels and CLAP dropped)."""
    out: dict[str, Tensor] = {}
    for key, value in _strip(state, PUBLISHED_PREFIX).items():
        if key.startswith(QUERY_PREFIX) or key.startswith(("base.stft.", "base.istft.")):
            continue
        if key.startswith("base."):
            out[key[len("base."):]] = value
        elif key.startswith("film."):
            out[key[len("film."):].replace("->", ".")] = value
        else:
            out[key] = value  # left for the strict load to report
    return out


def lasr_to_published(model: ResUNet30, prefix: str = PUBLISHED_PREFIX) -> dict[str, Tensor]:
    """Our weights in the published layout (with torchlibrosa STFT kernels), e.g. to evaluate with the reference
    code. Needs ``unused_reference_layers=True`` and ``film="bias"`` for a complete reference state dict."""
    out: dict[str, Tensor] = {}
    for key, value in model.state_dict().items():
        parts = key.split(".")
        if parts[-2].startswith(("beta", "gamma")):
            out[prefix + "film." + "->".join(parts[:-1]) + "." + parts[-1]] = value
        else:
            out[prefix + "base." + key] = value
    for name, tensor in reference_stft_kernels(model.n_fft).items():
        out[prefix + "base." + name] = tensor
    return out


def reference_stft_kernels(n_fft: int) -> dict[str, Tensor]:
    """torchlibrosa's frozen STFT/ISTFT tensors for a Hann window of ``n_fft`` (names as in the published file)."""
    bins = n_fft // 2 + 1
    window = np.hanning(n_fft + 1)[:-1]  # periodic Hann
    k = np.arange(n_fft)
    forward = np.exp(-2j * np.pi * np.outer(k, k) / n_fft)  # (n, n) DFT matrix
    inverse = np.exp(2j * np.pi * np.outer(k, k) / n_fft) / n_fft
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    return {
        "stft.conv_real.weight": as_tensor(np.real(forward[:, :bins] * window[:, None]).T[:, None, :]),
        "stft.conv_imag.weight": as_tensor(np.imag(forward[:, :bins] * window[:, None]).T[:, None, :]),
        "istft.conv_real.weight": as_tensor(np.real(inverse * window[None, :]).T[:, :, None]),
        "istft.conv_imag.weight": as_tensor(np.imag(inverse * window[None, :]).T[:, :, None]),
        "istft.ola_window": as_tensor(window ** 2),
    }


def check_stft(model: ResUNet30, settings: Mapping[str, Any], source: str) -> None:
    """Raise naming both settings when the checkpoint's STFT or rate differs from the model's."""
    ours = {"sample_rate": model.sample_rate, "n_fft": model.n_fft, "hop_length": model.hop_length}
    differ = [k for k in STFT_KEYS if settings.get(k) is not None and int(settings[k]) != ours[k]]
    if differ:
        theirs = describe_stft(settings) + (f" ({settings['recipe']})" if settings.get("recipe") else "")
        raise SeparatorCheckpointError(
            f"{source}: the checkpoint was trained with {theirs}, but the separator is configured with "
            f"{describe_stft(ours)}; set the separator's {', '.join(differ)} to the checkpoint's values "
            "(and feed audio at its sample rate)")


def _fit_state(model: ResUNet30, state: dict[str, Tensor], source: str) -> dict[str, Tensor]:
    """Adapt optional parts: drop unused reference layers the model lacks; zero FiLM scales the file lacks."""
    expected = model.state_dict()
    if not model.unused_reference_layers:
        state = {k: v for k, v in state.items()
                 if not (k.startswith("decoder_block") and k.split(".")[1] in ("bn2", "beta2", "gamma2"))}
    missing_gammas = [k for k in expected if ".gamma" in k and k not in state]
    if missing_gammas:
        log.info("%s: no FiLM scale in the checkpoint; %d gamma tensors keep their identity initialisation",
                 source, len(missing_gammas))
        state.update({k: expected[k] for k in missing_gammas})
    return state


def load_state_into(model: ResUNet30, state: Mapping[str, Tensor], source: str = "checkpoint",
                    stft: Mapping[str, Any] | None = None) -> None:
    """Load a lasr- or published-layout state dict into ``model`` with ``strict=True`` after renaming.

    Raises:
        SeparatorCheckpointError: other STFT settings (both named), or tensors that do not fit.
    """
    if is_published_layout(state):
        check_stft(model, stft or published_stft(state, source), source)
        state = published_to_lasr(state)
    else:
        state = _strip(state, LASR_PREFIX)
        if stft:
            check_stft(model, stft, source)
    state = _fit_state(model, state, source)
    shapes = model.state_dict()
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(shapes[k].shape)}" for k, v in state.items()
             if k in shapes and v.shape != shapes[k].shape]
    if wrong:
        raise SeparatorCheckpointError(f"{source}: tensor shapes differ from the configured separator "
                                       f"(channels / condition_size?): {wrong[:3]}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise SeparatorCheckpointError(f"{source}: weights do not fit the separator: {str(err)[:800]}") from None


def load_weights(model: ResUNet30, path: str | Path) -> None:
    """Initialise ``model`` from a lasr or published checkpoint file (``init_from``)."""
    checkpoint = read_state(path)
    meta = checkpoint.get(LASR_KEY) or {}
    load_state_into(model, checkpoint["state_dict"], str(path), meta.get("separator"))


def load_separator(path: str | Path, **overrides: Any) -> LoadedSeparator:
    """Rebuild the separator of a checkpoint (lasr, AudioSep or DCASE baseline) in eval mode on the CPU.

    Args:
        path: ``.ckpt`` / ``.pt`` / ``.bin`` / ``.safetensors``.
        overrides: separator arguments that win over the stored / inferred ones (e.g. ``hop_length``).
    """
    checkpoint = read_state(path)
    state, meta = checkpoint["state_dict"], checkpoint.get(LASR_KEY)
    if meta:
        args, kind, query = dict(meta["separator"]), "lasr", meta.get("query")
    elif is_published_layout(state):
        args, kind, query = _published_args(state, str(path)), "published", None
    else:
        raise SeparatorCheckpointError(f"{path}: neither a lasr separation checkpoint nor the published "
                                       "AudioSep / DCASE ResUNet30 layout")
    stored = {k: args[k] for k in STFT_KEYS}
    args.update(overrides)
    model = ResUNet30(**args)
    # an explicit override of the rate or hop is the user's call; n_fft is fixed by the weights' shapes
    check = {"n_fft": stored["n_fft"]} if set(overrides) & set(STFT_KEYS) else stored
    load_state_into(model, state, str(path), check)
    return LoadedSeparator(model.eval(), query, kind, {k: args[k] for k in STFT_KEYS})


def _published_args(state: Mapping[str, Tensor], source: str) -> dict[str, Any]:
    stft = published_stft(state, source)
    if "sample_rate" not in stft:
        known = " or ".join(describe_stft(s) for s in PUBLISHED_STFT.values())
        raise SeparatorCheckpointError(f"{source}: n_fft={stft['n_fft']} matches no published recipe ({known})")
    plain = _strip(state, PUBLISHED_PREFIX)
    first_film = next((v for k, v in plain.items() if k.startswith("film.") and k.endswith(".weight")), None)
    widths = [int(plain[f"base.encoder_block{i}.conv_block1.conv1.weight"].shape[0])
              for i in range(1, 100) if f"base.encoder_block{i}.conv_block1.conv1.weight" in plain]
    return {"sample_rate": stft["sample_rate"], "n_fft": stft["n_fft"], "hop_length": stft["hop_length"],
            "condition_size": int(first_film.shape[1]) if first_film is not None else 512,
            "channels": widths, "film": "bias", "unused_reference_layers": True}
