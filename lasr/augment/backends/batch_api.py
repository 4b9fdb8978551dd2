"""OpenAI Batch API files: export pending requests as JSONL, import the provider's result JSONL.

A run with this backend answers every pending request found in ``results`` (joined by ``custom_id``, never by
line order) and writes the others to ``requests_out`` for upload; run again with the new results file to
continue (multi-stage kinds then export their next stage). Each line:
``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}``; at most ``max_lines``
(50,000 per file is the API's limit) lines per file: extra requests go to ``requests_out`` with ``.partN``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import AsyncIterator

from lasr.augment.backends import Backend, Completion
from lasr.errors import DataError
from lasr.utils.atomic import atomic_open


def read_batch_results(path: str | Path) -> dict[str, Completion]:
    """``custom_id -> Completion`` from a Batch API output (or error) file."""
    results: dict[str, Completion] = {}
    with open(path, encoding="utf-8") as handle:
        for row, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                custom_id = data["custom_id"]
                response = data.get("response") or {}
                if data.get("error") or response.get("status_code") != 200:
                    results[custom_id] = Completion(str(data.get("error") or response)[:2000], "error",
                                                    error="batch_error")
                    continue
                body = response["body"]
                choice, usage = body["choices"][0], body.get("usage") or {}
                results[custom_id] = Completion(choice["message"]["content"], choice.get("finish_reason"),
                                                usage.get("prompt_tokens"), usage.get("completion_tokens"))
            except (ValueError, KeyError, IndexError, TypeError) as err:
                raise DataError(f"not a Batch API result line ({err})", path, row) from err
    return results


class BatchFileBackend(Backend):
    """Args:
        model: model name written into each request body (and part of the cache key).
        requests_out: JSONL file to write pending requests to.
        results: Batch API output JSONL(s) to import (optional).
        max_lines: requests per output file.
    """

    prompt_style = "chat"

    def __init__(self, model: str, requests_out: str | Path, results: list[str] | str | None = None,
                 max_lines: int = 50_000):
        self.model_id = model
        self.requests_out = Path(requests_out)
        self.max_lines = max_lines
        paths = [results] if isinstance(results, (str, Path)) else list(results or [])
        self.results: dict[str, Completion] = {}
        for path in paths:
            self.results.update(read_batch_results(path))
        self.pending: list[dict] = []  # written by aclose() (a run may call stream() several times)
        self.exported = 0

    def line(self, request, attempt: int) -> dict:
        s = request.sampling
        body = {"model": self.model_id, "messages": request.prompt.chat_messages(), "temperature": s.temperature,
                "top_p": s.top_p, "max_tokens": s.max_tokens, "seed": request.attempt_seed(attempt)}
        if s.top_k is not None:
            body["top_k"] = s.top_k
        return {"custom_id": request.wire_id(attempt), "method": "POST", "url": "/v1/chat/completions",
                "body": body}

    def _write(self, lines: list[dict]) -> None:
        for part, start in enumerate(range(0, len(lines), self.max_lines)):
            path = self.requests_out if part == 0 else self.requests_out.with_suffix(f".part{part}.jsonl")
            with atomic_open(path) as handle:
                for line in lines[start:start + self.max_lines]:
                    handle.write(json.dumps(line) + "\n")
        self.exported += len(lines)

    async def stream(self, items) -> AsyncIterator:
        missing = []
        for request, attempt in items:
            completion = self.results.get(request.wire_id(attempt))
            if completion is None:
                missing.append(self.line(request, attempt))
                continue
            yield request, attempt, completion
        self.pending += missing

    async def aclose(self) -> None:
        if self.pending:
            self._write(self.pending)
            self.pending = []
