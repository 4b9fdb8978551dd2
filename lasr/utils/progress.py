"""Progress of long jobs through tqdm: a live bar on a terminal, one plain line per interval in a log file.

tqdm redraws its line with carriage returns, which a log file keeps as one ever-growing line; when stderr is
not a terminal the bar is written through :class:`_LineWriter` instead, one line per ``LOG_INTERVAL_S`` seconds
(``LASR_PROGRESS_INTERVAL`` overrides it), each with count, percentage, rate and ETA; jobs shorter than
``LOG_DELAY_S`` print none.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any, Iterable

from tqdm import tqdm

LOG_INTERVAL_S = 30.0  # seconds between progress lines in a log file (no TTY)
LOG_DELAY_S = 5.0  # a job done sooner prints no progress lines into a log
INTERVAL_VARIABLE = "LASR_PROGRESS_INTERVAL"


class _LineWriter:
    """File-like wrapper that turns tqdm's carriage-return redraws into separate, newline-ended lines."""

    def __init__(self, stream: IO[str]):
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def log_interval() -> float:
    """Seconds between progress lines when writing to a log (``LASR_PROGRESS_INTERVAL`` or the default)."""
    try:
        return max(0.0, float(os.environ.get(INTERVAL_VARIABLE, LOG_INTERVAL_S)))
    except ValueError:
        return LOG_INTERVAL_S


def progress(iterable: Iterable | None = None, total: int | None = None, desc: str = "", unit: str = "it",
             initial: int = 0, enabled: bool = True, stream: IO[str] | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar on ``stream`` (default stderr): live on a terminal, else one line per :func:`log_interval`.

    ``enabled=False`` gives a silent bar (same interface), for ``--no-progress``.
    """
    stream = stream or sys.stderr
    terminal = hasattr(stream, "isatty") and stream.isatty()
    if not terminal:
        kwargs.setdefault("mininterval", log_interval())
        kwargs.setdefault("maxinterval", kwargs["mininterval"])
        kwargs.setdefault("delay", min(LOG_DELAY_S, kwargs["mininterval"]))
        kwargs.setdefault("ascii", True)
        kwargs.setdefault("ncols", 100)
        stream = _LineWriter(stream)
    return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, file=stream, disable=not enabled,
                dynamic_ncols=terminal, **kwargs)
