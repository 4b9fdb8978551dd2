"""Exceptions that carry the place of the problem (file, row, key) in their message."""

from __future__ import annotations

from pathlib import Path


class LasrError(Exception):
    """Base class for errors lasr reports to users (printed without a traceback by the CLI)."""


class DataError(LasrError):
    """Bad input data: the message names the file and, where known, the row or key."""

    def __init__(self, message: str, path: str | Path | None = None, row: int | str | None = None):
        where = ""
        if path is not None:
            where = str(path)
            if row is not None:
                where += f", row {row}"
            where += ": "
        super().__init__(where + message)
        self.path = None if path is None else str(path)
        self.row = row


class AudioError(DataError):
    """An audio file is missing, unreadable, empty, silent or too short."""
