"""Checks of command-line values and output locations, run before any work.

The ``*_int`` / ``*_float`` / :func:`text` functions are argparse ``type=`` callables: a bad value is reported
by argparse as one line naming the option, with exit code 2. The output checks raise :class:`LasrError`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from lasr.errors import LasrError


def _number(kind, value: str, minimum: float, what: str):
    try:
        number = kind(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a{'n integer' if kind is int else ' number'}") from None
    if number < minimum or (kind is float and number != number):
        raise argparse.ArgumentTypeError(f"must be {what}, got {value}")
    return number


def positive_int(value: str) -> int:
    """argparse type: an integer >= 1."""
    return _number(int, value, 1, "a positive integer")


def non_negative_int(value: str) -> int:
    """argparse type: an integer >= 0."""
    return _number(int, value, 0, "0 or more")


def positive_float(value: str) -> float:
    """argparse type: a number > 0."""
    number = _number(float, value, 0.0, "a positive number")
    if number == 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
    return number


def non_negative_float(value: str) -> float:
    """argparse type: a number >= 0."""
    return _number(float, value, 0.0, "0 or more")


def text(value: str) -> str:
    """argparse type: a non-blank string (stripped)."""
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value.strip()


def check_device(name: str, what: str = "--device"):
    """``name`` as a :class:`torch.device` that exists here (a CUDA index beyond the visible GPUs, or CUDA/MPS
    on a machine without them, is a :class:`LasrError` instead of a failure deep inside the first copy)."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise LasrError(f"{what} {name!r}: not a torch device ({err})") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index or 0) >= count:
            raise LasrError(f"{what} {name!r}: this machine has {count} visible CUDA device(s)")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise LasrError(f"{what} {name!r}: MPS is not available here")
    return device


def _nearest_existing(path: Path) -> Path:
    for parent in (path, *path.parents):
        if parent.exists():
            return parent
    return Path.cwd()


def _check_parent(path: Path, what: str) -> None:
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        raise LasrError(f"{what} {path}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise LasrError(f"{what} {path}: cannot write in {base} (permission denied)")


def check_output_file(path: str | Path, what: str = "--out") -> Path:
    """``path`` can be created or replaced as a file: not a folder, and its nearest existing parent is a
    writable folder (not a regular file). Nothing is created."""
    path = Path(path)
    if path.is_dir():
        raise LasrError(f"{what} {path}: is an existing folder; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise LasrError(f"{what} {path}: exists and is not writable")
    _check_parent(path, what)
    return path


def check_output_dir(path: str | Path, what: str = "--out") -> Path:
    """``path`` is a writable folder or can be created as one (no regular file in the way). Nothing is created."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise LasrError(f"{what} {path}: is a file, not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise LasrError(f"{what} {path}: folder is not writable")
        return path
    _check_parent(path, what)
    return path
