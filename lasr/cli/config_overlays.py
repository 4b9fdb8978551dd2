"""Config files that are overlays: a top-level ``config: BASE.yaml`` key names the file they change.

``lasr fit --config configs/stage3_cluster.yaml`` becomes ``--config stage1_pretrain.yaml --config
stage2_distill.yaml --config <stage 3's own keys>``, which LightningCLI merges left to right (a class's
``init_args`` merge, lists replace).  Hand-written because jsonargparse, given a nested ``config:`` key, checks
the file's other keys against the config from before the file, so an overlay of ``init_args`` without
``class_path`` fails, and one nested level deeper the base itself fails.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from lasr.errors import LasrError

BASE_KEY = "config"
_FLAGS = ("--config", "-c")


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None  # LightningCLI reports unreadable files itself


def overlay_chain(path: str | Path, _seen: tuple[Path, ...] = ()) -> list[str]:
    """``--config`` values equivalent to ``path``: its bases first (paths relative to the file naming them), then
    its own keys (the file itself, or its keys as a YAML string when it names a base)."""
    path = Path(path)
    data = _read(path)
    if not isinstance(data, dict) or BASE_KEY not in data:
        return [str(path)]
    if path.resolve() in _seen:
        raise LasrError(f"{path}: config overlays include each other ({' -> '.join(map(str, _seen))})")
    bases = data.pop(BASE_KEY)
    chain: list[str] = []
    for base in bases if isinstance(bases, list) else [bases]:
        base_path = Path(os.path.normpath(path.parent / base))  # an absolute base stays as it is
        if not base_path.is_file():
            raise LasrError(f"{path}: {BASE_KEY}: base config not found: {base_path}")
        chain += overlay_chain(base_path, (*_seen, path.resolve()))
    return [*chain, yaml.safe_dump(data, sort_keys=False)] if data else chain


def expand_overlays(argv: list[str]) -> list[str]:
    """``argv`` with every ``--config FILE`` (or ``-c FILE``, ``--config=FILE``) expanded to its overlay chain."""
    out: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg in _FLAGS and index + 1 < len(argv):
            value, index = argv[index + 1], index + 2
        elif arg.startswith("--config="):
            value, index = arg.split("=", 1)[1], index + 1
        else:
            out.append(arg)
            index += 1
            continue
        for item in overlay_chain(value):
            out += ["--config", item]
    return out
