"""Rebuild a trained dual encoder from a checkpoint alone, or from a checkpoint plus its LightningCLI config.

Lightning saves the task's hyper-parameters in a checkpoint, but lasr tasks keep the ``model`` argument out of
them (it is a module), so the architecture is not in a plain checkpoint.  Sources, by priority:

* an explicit config file, the YAML given to ``lasr fit`` or the ``config.yaml`` Lightning wrote to the log dir;
* ``checkpoint["lasr_config"]``: the ``model`` and ``data`` sections of the run's config, written into every
  checkpoint by :func:`store_run_config` (tasks call it from ``on_save_checkpoint`` under ``lasr fit``), with
  every relative path that named an existing file made absolute, so tools work from any folder;
* a ``config.yaml`` in the checkpoint's folder or the folder above it.

Weights are then loaded strictly: every key and shape of the model must match.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import yaml

from lasr.errors import LasrError
from lasr.models.dual_encoder import DualEncoder
from lasr.models.weights import without_pretrained_files

log = logging.getLogger(__name__)

CONFIG_KEY = "lasr_config"
_SHOWN = 5  # names listed in mismatch errors


def store_run_config(trainer: Any, checkpoint: dict[str, Any]) -> None:
    """Copy the ``model`` and ``data`` sections of the LightningCLI config into ``checkpoint[CONFIG_KEY]``.

    The config is taken from Lightning's ``SaveConfigCallback`` (present under ``lasr fit``); without one
    (plain ``Trainer`` use) nothing is stored.  Never fails the save: problems are logged.
    """
    from lightning.pytorch.cli import SaveConfigCallback

    saver = next((cb for cb in getattr(trainer, "callbacks", []) if isinstance(cb, SaveConfigCallback)), None)
    if saver is None:
        return
    try:
        config = yaml.safe_load(saver.parser.dump(saver.config, skip_none=False))
        checkpoint[CONFIG_KEY] = {key: absolute_paths(config.get(key)) for key in ("model", "data")}
    except Exception as err:  # noqa: BLE001 - a config that cannot be dumped must not lose the checkpoint
        log.warning("could not store the run config in the checkpoint (%s); tools will need --config", err)


def _looks_like_path(value: str) -> bool:
    return ("/" in value or os.sep in value or Path(value).suffix != "") and "\n" not in value


def absolute_paths(value: Any, base: Path | None = None) -> Any:
    """``value`` (a config tree) with every relative path string that names an existing file or folder under
    ``base`` (default: the working folder) replaced by its absolute path; other values unchanged."""
    base = base or Path.cwd()
    if isinstance(value, dict):
        return {k: absolute_paths(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [absolute_paths(v, base) for v in value]
    if isinstance(value, str) and value and _looks_like_path(value) and not Path(value).is_absolute():
        try:
            candidate = base / value
            if candidate.exists():
                return str(candidate.absolute())
        except (OSError, ValueError):  # not a possible file name
            pass
    return value


def missing_paths(value: Any) -> list[str]:
    """Absolute path strings in a config tree that no longer exist (what a stored run config points at)."""
    if isinstance(value, dict):
        return [p for v in value.values() for p in missing_paths(v)]
    if isinstance(value, list):
        return [p for v in value for p in missing_paths(v)]
    if isinstance(value, str) and value.startswith("/") and "\n" not in value and not Path(value).exists():
        return [value]
    return []


@dataclass
class LoadedModel:
    """A dual encoder rebuilt from ``checkpoint`` in eval mode, with the data section of its config."""

    model: DualEncoder
    checkpoint: str
    data_config: dict[str, Any]

    @property
    def eval_seconds(self) -> float | None:
        """The evaluation crop length (s) the model was trained with, when the config says."""
        value = self.data_config.get("eval_seconds")
        return None if value is None else float(value)


def _init_args(section: dict[str, Any] | None) -> dict[str, Any]:
    section = section or {}
    return dict(section.get("init_args", {k: v for k, v in section.items() if k != "class_path"}))


def _config_beside(path: str) -> Path | None:
    """A ``config.yaml`` that Lightning wrote in the checkpoint's folder or the one above, if any."""
    folder = Path(path).resolve().parent
    return next((c for c in (folder / "config.yaml", folder.parent / "config.yaml") if c.is_file()), None)


def read_run_config(checkpoint: dict[str, Any], path: str, config_path: str | None) -> tuple[dict, dict]:
    """(model section of the task, data init args) from ``config_path`` or from the checkpoint itself."""
    if config_path:
        if not Path(config_path).is_file():
            raise LasrError(f"config file not found: {config_path}")
        config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
        if "fit" in config and "model" not in config:  # a full `lasr fit --print_config` dump
            config = config["fit"]
    elif CONFIG_KEY in checkpoint:
        config = checkpoint[CONFIG_KEY]
    elif _config_beside(path) is not None:
        log.warning("%s carries no config; building its model from %s", path, _config_beside(path))
        return read_run_config(checkpoint, path, str(_config_beside(path)))
    else:
        raise LasrError(
            f"{path}: the checkpoint does not say how to build its model (written outside `lasr fit` or by an "
            "older lasr); pass the config it was trained with (--config FILE, e.g. the YAML given to `lasr fit` "
            "or the config.yaml Lightning wrote next to the run's logs)")
    task_args = _init_args(config.get("model"))
    if "model" not in task_args:
        raise LasrError(f"{config_path or path}: no model.init_args.model section (the dual encoder) in the config")
    return task_args["model"], _init_args(config.get("data"))


def build_dual_encoder(model_section: dict[str, Any]) -> DualEncoder:
    """Instantiate the ``class_path``/``init_args`` tree of a dual encoder with jsonargparse."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--model", type=DualEncoder)
    gone = missing_paths(model_section)
    hint = f" (the config refers to files that are gone: {', '.join(gone[:_SHOWN])})" if gone else ""
    try:
        parsed = parser.parse_object({"model": model_section})
    except Exception as err:  # jsonargparse raises its own error types
        raise LasrError(f"cannot build the dual encoder from the config: {err}{hint}") from None
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes  # renamed in jsonargparse 4.49
    try:
        return instantiate(parsed).model
    except (LasrError, OSError) as err:
        if not hint:
            raise
        raise LasrError(f"cannot build the dual encoder from the config: {err}{hint}") from None


def _check_state(model: DualEncoder, state: dict[str, torch.Tensor], path: str) -> None:
    """Raise LasrError naming missing, unexpected and differently shaped tensors."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and state[k].shape != own[k].shape]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
        if items:
            problems.append(f"{len(items)} {label} (first: {items[:_SHOWN]})")
    if problems:
        raise LasrError(f"{path}: the checkpoint does not match the configured model (another architecture or "
                        f"embedding size?): {'; '.join(problems)}")


def load_dual_encoder(path: str | Path, config_path: str | None = None,
                      device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the dual encoder saved in a task checkpoint (keys ``model.*``), load it strictly, eval mode."""
    from lasr.models.checkpoints import read_checkpoint

    path = str(path)
    checkpoint = read_checkpoint(path)
    if "state_dict" not in checkpoint:
        raise LasrError(f"{path}: not a Lightning checkpoint (no state_dict)")
    model_section, data_args = read_run_config(checkpoint, path, config_path)
    model = build_dual_encoder(without_pretrained_files(model_section))  # the checkpoint holds all weights
    state = {k[len("model."):]: v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}
    _check_state(model, state, path)
    model.load_state_dict(state, strict=True)
    return LoadedModel(model.to(device).eval(), path, data_args)


def configs_per_checkpoint(checkpoints: Sequence[str], configs: Sequence[str] | None) -> list[str | None]:
    """One config per checkpoint (None = the one stored in the checkpoint) from none, one for all, or one each
    where ``-`` stands for the stored config (e.g. ``--config stage1.yaml - -``)."""
    if not configs:
        return [None] * len(checkpoints)
    if len(configs) == 1:
        configs = list(configs) * len(checkpoints)
    if len(configs) != len(checkpoints):
        raise LasrError(f"--config: give one file for all checkpoints or one per checkpoint "
                        f"({len(checkpoints)}, '-' = stored config), got {len(configs)}")
    return [None if c in ("-", "") else c for c in configs]
