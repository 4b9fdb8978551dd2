"""Read checkpoint files (:func:`read_checkpoint`, the one reader) and rebuild a trained :class:`DualEncoder`
from a Lightning checkpoint, for inference tools.

Building is shared with distillation (:func:`lasr.models.run_config.load_dual_encoder`): the architecture comes
from an explicit run config, else from the config that ``lasr fit`` stores in the checkpoint (``lasr_config``).
This module adds what older checkpoints need, which hold only weights (``RetrievalTask`` keeps the model out of
its hyper-parameters): finding the ``config.yaml`` LightningCLI wrote for the run (:func:`find_run_config`).
It also fingerprints a model's weights so an embedding index can tell which model built it.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import yaml

from lasr.errors import LasrError

if TYPE_CHECKING:
    from lasr.models.dual_encoder import DualEncoder

log = logging.getLogger(__name__)

CONFIG_NAME = "config.yaml"  # what LightningCLI's SaveConfigCallback writes into the log dir
LOG_ROOTS = ("logs", "lightning_logs")  # where LightningCLI log dirs are searched for a matching config


class CheckpointError(LasrError):
    """A checkpoint or its run config cannot be turned into a model."""


class OpaqueObject:
    """Inert stand-in for a class named in an untrusted checkpoint: keeps constructor arguments and pickled
    state as data (see :func:`read_checkpoint` with ``trusted=False``)."""

    def __new__(cls, *args: Any, **kwargs: Any):
        instance = super().__new__(cls)
        instance.opaque_args = args
        instance.opaque_state = None
        return instance

    def __init__(self, *args: Any, **kwargs: Any):
        pass

    def __setstate__(self, state: Any) -> None:
        self.opaque_state = state


def _stand_ins(names: list[str]) -> list[tuple[type, str]]:
    """One empty :class:`OpaqueObject` subclass per dotted global name, in the form ``safe_globals`` takes."""
    stand_ins = []
    for name in names:
        module, _, qualname = name.rpartition(".")
        cls = type(qualname or name, (OpaqueObject,), {"__module__": module or "builtins"})
        stand_ins.append((cls, name))
    return stand_ins


def read_checkpoint(path: str | Path, what: str = "checkpoint", hint: str = "", *, trusted: bool = True,
                    error: type[LasrError] = CheckpointError) -> Any:
    """The object stored in a local checkpoint file, for every lasr reader (tasks, separators, encoders).

    Args:
        path: ``.ckpt`` / ``.pt`` (``torch.save``) or ``.safetensors`` (returned as ``{"state_dict": ...}``).
        what: what the file should hold, for messages ("BEATs checkpoint"); hint: appended to every message
            (e.g. where to get the right file).
        trusted: ``True`` for lasr's own checkpoints (full unpickler, weights memory-mapped so optimiser
            states cost no RAM until touched); ``False`` for published files: torch's restricted unpickler,
            every foreign class replaced by an inert :class:`OpaqueObject`, so no code from the file runs.
        error: the :class:`LasrError` subclass raised.

    Raises ``error`` naming the file when it is missing or cannot be read.
    """
    path = Path(path).expanduser()
    tail = f"; {hint}" if hint else ""
    if not path.is_file():
        where = "" if path.is_absolute() else f" (looked at {path.absolute()})"
        raise error(f"{what} not found: {path}{where}{tail}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return {"state_dict": load_file(str(path))}
        if trusted:
            return torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:  # names classes outside torch's allowlist: retry with inert stand-ins
            foreign = torch.serialization.get_unsafe_globals_in_checkpoint(path)
            with torch.serialization.safe_globals(_stand_ins(foreign)):
                return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # zip/pickle/safetensors errors have unhelpful types
        raise error(f"cannot read {what} {path}: not a readable PyTorch checkpoint ({err}){tail}") from None


def _dirpaths(config: dict[str, Any]) -> list[Path]:
    callbacks = (config.get("trainer") or {}).get("callbacks") or []
    return [Path(c["init_args"]["dirpath"]) for c in callbacks
            if isinstance(c, dict) and (c.get("init_args") or {}).get("dirpath")]


def _matches_dirpath(config_path: Path, ckpt_dir: Path) -> bool:
    """Whether a LightningCLI config's ModelCheckpoint wrote into ``ckpt_dir`` (relative dirpaths are tried
    against the current directory and every ancestor of the config, since fit ran somewhere above it)."""
    try:
        config = yaml.safe_load(config_path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    for dirpath in _dirpaths(config) if isinstance(config, dict) else []:
        for base in (Path.cwd(), *config_path.parents):
            if (base / dirpath).resolve() == ckpt_dir:
                return True
    return False


def find_run_config(ckpt: str | Path) -> Path | None:
    """The LightningCLI ``config.yaml`` of the run that wrote ``ckpt``, or ``None``.

    In order: ``config.yaml`` in the checkpoint's folder; Lightning's default layout
    ``<log_dir>/checkpoints/x.ckpt`` with ``<log_dir>/config.yaml``; else the newest ``config.yaml`` (under
    ``logs/`` or ``lightning_logs/`` of the current directory or of the checkpoint's ancestors, or in those
    ancestors themselves) whose ``ModelCheckpoint.dirpath`` is the checkpoint's folder.
    """
    ckpt = Path(ckpt).absolute()
    if (ckpt.parent / CONFIG_NAME).is_file():
        return ckpt.parent / CONFIG_NAME
    if ckpt.parent.name == "checkpoints" and (ckpt.parent.parent / CONFIG_NAME).is_file():
        return ckpt.parent.parent / CONFIG_NAME
    bases = [Path.cwd(), *list(ckpt.parents)[:4]]
    candidates = {c for base in bases for root in LOG_ROOTS for c in (base / root).glob(f"**/{CONFIG_NAME}")}
    candidates |= {base / CONFIG_NAME for base in bases if (base / CONFIG_NAME).is_file()}
    ckpt_dir = ckpt.parent.resolve()
    for candidate in sorted(candidates, key=lambda p: p.stat().st_mtime, reverse=True):
        if _matches_dirpath(candidate, ckpt_dir):
            return candidate
    return None


def model_fingerprint(model: torch.nn.Module) -> str:
    """Content hash (hex) of every parameter and buffer: equal iff two models hold the same weights."""
    digest = hashlib.blake2b(digest_size=12)
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _stores_config(ckpt: str | Path) -> bool:
    from lasr.models.run_config import CONFIG_KEY

    return CONFIG_KEY in read_checkpoint(ckpt)


def load_retrieval_model(ckpt: str | Path, config: str | Path | None = None) -> DualEncoder:
    """The trained dual encoder of a retrieval-task checkpoint, in eval mode on the CPU.

    Args:
        ckpt: Lightning checkpoint (``.ckpt``).
        config: run config YAML; when ``None``: the config stored in the checkpoint, else the run's
            ``config.yaml`` found by :func:`find_run_config`.

    Raises:
        LasrError: the checkpoint is unreadable, no architecture can be found, or the weights do not fit.
    """
    from lasr.models.run_config import load_dual_encoder

    if config is None and not _stores_config(ckpt):
        config = find_run_config(ckpt)
        if config is None:
            raise CheckpointError(f"{ckpt}: the checkpoint does not store its architecture and no run "
                                  f"{CONFIG_NAME} was found; pass --config with the training config")
    if config is not None:
        log.info("building the model from %s", config)
    return load_dual_encoder(ckpt, None if config is None else str(config)).model
