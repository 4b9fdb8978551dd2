"""Config files that are overlays: a top-level ``config: BASE.yaml`` key names the file they change.

Every ``--config`` value and every base is looked up by :func:`lasr.recipes.resolve_config`: an existing file
first (a base relative to the file naming it), then a shipped recipe of that name, announced on stderr.

``lasr fit --config configs/stage3_cluster.yaml`` becomes ``--config stage1_pretrain.yaml --config
stage2_distill.yaml --config <stage 3's own keys>``, which LightningCLI merges left to right (a class's
``init_args`` merge, lists replace).  Hand-written because jsonargparse, given a nested ``config:`` key, checks
the file's other keys against the config from before the file, so an overlay of ``init_args`` without
``class_path`` fails, and one nested level deeper the base itself fails.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from lasr.errors import LasrError
from lasr.recipes import BASE_KEY, Resolved, looks_like_file, resolve_config

_FLAGS = ("--config", "-c")


def announce(resolved: Resolved, value: str) -> str:
    """``resolved.path``, after saying on stderr (once, on rank 0) when it is a shipped recipe found by name."""
    from lasr.cli import launched_rank

    if resolved.shipped and launched_rank() == 0:
        print(resolved.announcement(value), file=sys.stderr, flush=True)
    return resolved.path


def config_file(value: str) -> str:
    """argparse ``type`` of a tool's ``--config``: the file it names (a path, else a shipped recipe); ``-`` and
    inline YAML pass unchanged."""
    return announce(resolve_config(value), value)


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None  # LightningCLI reports unreadable files itself


def overlay_chain(path: str | Path, _seen: tuple[Path, ...] = ()) -> list[str]:
    """``--config`` values equivalent to ``path``: its bases first (paths relative to the file naming them), then
    its own keys (the file itself, or its keys as a YAML string when it names a base).

    ``path`` may also be a shipped recipe's name (``stage2_distill.yaml``) or inline YAML (passed on unchanged).
    """
    if not _seen:
        if not looks_like_file(str(path)):
            return [str(path)]
        path = config_file(str(path))
    path = Path(path)
    data = _read(path)
    if not isinstance(data, dict) or BASE_KEY not in data:
        return [str(path)]
    if path.resolve() in _seen:
        raise LasrError(f"{path}: config overlays include each other ({' -> '.join(map(str, _seen))})")
    bases = data.pop(BASE_KEY)
    chain: list[str] = []
    for base in bases if isinstance(bases, list) else [bases]:
        # relative to the file naming it (an absolute base stays as it is), else a shipped recipe
        where = f"{path}: {BASE_KEY}: base config not found: "
        resolved = resolve_config(str(base), relative_to=path.parent, where=where)
        base_path = Path(announce(resolved, f"{path}: {BASE_KEY}: {base}"))
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
