"""The result store: one SQLite database (WAL) with one row per logical request, keyed by ``custom_id``.

Every finished request is committed on its own, so killing the job at any moment loses only the requests in
flight; re-running skips rows that are accepted, failed (a refusal or a body that cannot be read; sent again
only after :meth:`Store.mark_retry`, ``lasr augment retry --rejected REASON``) or out of attempts. A row is
replaced (never duplicated) when a rejected request is retried.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from lasr.errors import DataError

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    custom_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL, stage TEXT NOT NULL, model TEXT NOT NULL, template TEXT NOT NULL,
    sample_index INTEGER NOT NULL, source TEXT NOT NULL, meta TEXT NOT NULL, sampling TEXT NOT NULL,
    status TEXT NOT NULL,            -- accepted | rejected (by the filter) | failed (refused, bad body) | retry
    attempts INTEGER NOT NULL,
    raw TEXT, text TEXT, finish_reason TEXT, rejection TEXT,
    prompt_tokens INTEGER, completion_tokens INTEGER, updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_kind ON results(kind, stage, status);
"""


@dataclass
class Row:
    custom_id: str
    kind: str
    stage: str
    model: str
    template: str
    sample_index: int
    source: str
    meta: dict[str, Any]
    status: str
    attempts: int
    raw: str | None
    text: str | None
    finish_reason: str | None
    rejection: str | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    sampling: str = ""          # JSON of the decoding parameters (provenance)
    updated: float = 0.0

    @property
    def provenance(self) -> tuple[str, str, str]:
        """``(model, template id@version, sampling)``: rows of one provenance come from one setting."""
        return self.model, self.template, self.sampling


class Store:
    """SQLite result store. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a killed process loses no commit
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as err:
            raise DataError(f"not a usable result store ({err})", path) from err

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def status(self, custom_ids: list[str]) -> dict[str, tuple[str, int, str | None]]:
        """``custom_id -> (status, attempts, rejection)`` for the ids already in the store."""
        out: dict[str, tuple[str, int, str | None]] = {}
        for start in range(0, len(custom_ids), 500):
            chunk = custom_ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for cid, status, attempts, rejection in self.db.execute(
                    f"SELECT custom_id, status, attempts, rejection FROM results WHERE custom_id IN ({marks})",
                    chunk):
                out[cid] = (status, attempts, rejection)
        return out

    def put(self, request, attempt: int, raw: str | None, text: str | None, finish_reason: str | None,
            rejection: str | None, prompt_tokens: int | None = None, completion_tokens: int | None = None,
            failed: bool = False) -> None:
        """Insert or replace the row of ``request`` after attempt number ``attempt`` (0-based); commits.
        ``failed`` marks a request-level failure (status ``failed``, reason in ``rejection``)."""
        status = "failed" if failed else "rejected" if rejection else "accepted" if text is not None else "received"
        self.db.execute(
            "INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (request.custom_id, request.kind, request.stage, request.model, request.template,
             request.sample_index, request.source, json.dumps(request.meta, sort_keys=True),
             json.dumps(request.sampling.as_dict()), status, attempt + 1,
             raw, text, finish_reason, rejection, prompt_tokens, completion_tokens, time.time()))

    def received(self) -> dict[str, tuple[int, str | None, str | None, int | None, int | None]]:
        """``custom_id -> (attempts, raw, finish_reason, prompt_tokens, completion_tokens)`` of answers stored
        on arrival but not judged yet (the job stopped in between)."""
        return {cid: (attempts, raw, finish, pt, ct) for cid, attempts, raw, finish, pt, ct in self.db.execute(
            "SELECT custom_id, attempts, raw, finish_reason, prompt_tokens, completion_tokens FROM results "
            "WHERE status = 'received'")}

    def mark_retry(self, reason: str, kind: str | None = None) -> int:
        """Mark failed or rejected rows with rejection ``reason`` (``all``: every one) to be sent again, from
        the first attempt, by the next run of their kind; returns how many."""
        query = "UPDATE results SET status = 'retry', attempts = 0 WHERE status IN ('failed', 'rejected')"
        args: list[str] = []
        if reason != "all":
            query, args = query + " AND rejection = ?", [reason]
        if kind:
            query, args = query + " AND kind = ?", args + [kind]
        return self.db.execute(query, args).rowcount

    def rows(self, kind: str | None = None, stage: str | None = None, status: str | None = "accepted") -> Iterator[Row]:
        """Rows in insertion order, optionally filtered by kind, stage and status."""
        query, args = "SELECT * FROM results WHERE 1=1", []
        for column, value in (("kind", kind), ("stage", stage), ("status", status)):
            if value is not None:
                query += f" AND {column} = ?"
                args.append(value)
        for values in self.db.execute(query + " ORDER BY rowid", args):
            values = list(values)
            values[7] = json.loads(values[7])
            sampling, updated = values.pop(8), values[16]
            yield Row(*values[:16], sampling=sampling, updated=updated)

    def counts(self) -> dict[tuple[str, str, str], int]:
        """``(kind, status, rejection or '') -> rows``."""
        return {(k, s, r or ""): n for k, s, r, n in self.db.execute(
            "SELECT kind, status, rejection, COUNT(*) FROM results GROUP BY kind, status, rejection")}
