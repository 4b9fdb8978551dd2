"""OpenAI-compatible chat-completions client: asyncio + aiohttp, concurrency limit, timeouts, retries."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import time
from typing import Any, AsyncIterator

import aiohttp

from lasr.augment.backends import Backend, BackendError, Completion

log = logging.getLogger(__name__)
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
JOB_STATUS = {401, 403, 404}  # bad key, no access, wrong URL or model: no request of the job can succeed


class OpenAIChatBackend(Backend):
    """POST ``{base_url}/chat/completions`` for each request.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000/v1`` (vLLM serve), ``http://127.0.0.1:11434/v1`` (Ollama).
        model: model name sent in the body (and part of the cache key).
        api_key_env: name of the environment variable holding the API key (the key is read from there only,
            never logged or stored); None for servers without authentication.
        concurrency: requests in flight at once.
        timeout_s: total timeout of one HTTP attempt in seconds.
        max_retries: retries after the first try on 429, 5xx, connection errors, timeouts, malformed bodies.
        backoff_s / backoff_max_s: exponential backoff base and cap in seconds (with jitter).
        retry_after_max_s: a server's ``Retry-After`` (seconds or HTTP date) is waited for up to this long.

    Per-request failures come back as ``Completion(finish_reason="error")`` with ``error`` ``refused`` (a 4xx
    other than 401/403/404, e.g. a content-policy 400), ``undecodable`` (a body that is not UTF-8) or
    ``malformed`` (not a chat completion after the retries), and the server's body in ``text``; the job stores
    them as rows and goes on. 401/403/404 and a server that stays down raise :class:`BackendError`.
    """

    prompt_style = "chat"

    def __init__(self, base_url: str, model: str, api_key_env: str | None = None, concurrency: int = 8,
                 timeout_s: float = 60.0, max_retries: int = 5, backoff_s: float = 0.5, backoff_max_s: float = 30.0,
                 retry_after_max_s: float = 600.0):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model_id = model
        self.api_key_env = api_key_env
        if api_key_env and not os.environ.get(api_key_env):
            raise BackendError(f"the API key for {self.url} is read from the environment variable "
                               f"{api_key_env}; set {api_key_env}")
        self.concurrency, self.timeout_s, self.max_retries = concurrency, timeout_s, max_retries
        self.backoff_s, self.backoff_max_s, self.retry_after_max_s = backoff_s, backoff_max_s, retry_after_max_s
        self._session: aiohttp.ClientSession | None = None
        self.retries = 0  # attempts repeated (for the summary)

    def _headers(self, wire_id: str) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "X-Client-Request-Id": wire_id}
        if self.api_key_env:
            headers["Authorization"] = f"Bearer {os.environ[self.api_key_env]}"
        return headers

    def body(self, request, attempt: int) -> dict[str, Any]:
        """The JSON body of one attempt (also used for Batch API lines)."""
        s = request.sampling
        body = {"model": self.model_id, "messages": request.prompt.chat_messages(), "temperature": s.temperature,
                "top_p": s.top_p, "max_tokens": s.max_tokens, "seed": request.attempt_seed(attempt)}
        return body if s.top_k is None else {**body, "top_k": s.top_k}  # vLLM / llama.cpp extension

    async def _session_get(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                                                  connector=aiohttp.TCPConnector(limit=self.concurrency))
        return self._session

    def _delay(self, retry: int, retry_after: str | None) -> float:
        """Seconds to wait before retry number ``retry``: the server's ``Retry-After`` (delta seconds or an HTTP
        date) up to ``retry_after_max_s``, else exponential backoff with jitter."""
        if retry_after:
            try:
                wait = float(retry_after)
            except ValueError:
                try:
                    wait = email.utils.parsedate_to_datetime(retry_after).timestamp() - time.time()
                except (TypeError, ValueError):
                    wait = None
            if wait is not None:
                return min(max(wait, 0.0), self.retry_after_max_s)
        return min(self.backoff_s * 2 ** retry, self.backoff_max_s) * (0.5 + random.random() / 2)

    async def _post_once(self, request, attempt: int) -> tuple[str, Completion | None, str | None]:
        """One HTTP attempt: ("ok", completion, None) | ("retry", None, why) | ("fatal", None, why)."""
        session = await self._session_get()
        try:
            async with session.post(self.url, json=self.body(request, attempt),
                                    headers=self._headers(request.wire_id(attempt))) as response:
                data = await response.read()
                status, retry_after = response.status, response.headers.get("Retry-After", "")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
            return "retry", None, f"{type(err).__name__}: {err}|"
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return "ok", Completion(data.decode("utf-8", "replace")[:2000], "error", error="undecodable"), None
        if status in RETRY_STATUS:
            return "retry", None, f"HTTP {status}|{retry_after}"
        if status in JOB_STATUS:
            return "fatal", None, f"HTTP {status}: {text[:200]}"
        if status != 200:
            return "ok", Completion(f"HTTP {status}: {text[:2000]}", "error", error="refused"), None
        try:
            data = json.loads(text)
            choice = data["choices"][0]
            usage = data.get("usage") or {}
            return "ok", Completion(choice["message"]["content"], choice.get("finish_reason"),
                                    usage.get("prompt_tokens"), usage.get("completion_tokens")), None
        except (ValueError, KeyError, IndexError, TypeError):
            return "retry", None, f"malformed response body: {text[:80]!r}|"

    async def complete(self, request, attempt: int) -> Completion:
        """POST with retries; a backend that stays down raises :class:`BackendError` naming the URL."""
        why = ""
        for retry in range(self.max_retries + 1):
            outcome, completion, why = await self._post_once(request, attempt)
            if outcome == "ok":
                return completion
            if outcome == "fatal":
                raise BackendError(f"{self.url} refused the request: {why}")
            if retry < self.max_retries:
                self.retries += 1
                reason, _, retry_after = why.rpartition("|")
                await asyncio.sleep(self._delay(retry, retry_after or None))
        reason = why.rpartition("|")[0]
        if reason.startswith("malformed"):
            return Completion(reason[:2000], "error", error="malformed")
        raise BackendError(f"{self.url} failed after {self.max_retries + 1} tries: {reason}")

    async def stream(self, items) -> AsyncIterator:
        """Answers as they arrive. When the backend fails for good, no new request is started, the requests
        already in flight are still answered and yielded (so the job stores what it paid for), then the
        error is raised."""
        queue: asyncio.Queue = asyncio.Queue()
        pending = list(reversed(items))
        errors: list[BaseException] = []

        async def worker() -> None:
            try:
                while pending and not errors:
                    request, attempt = pending.pop()
                    try:
                        await queue.put((request, attempt, await self.complete(request, attempt)))
                    except Exception as err:  # noqa: BLE001 - raised by the consumer once in-flight work is in
                        errors.append(err)
                        return
            finally:
                await queue.put(None)

        workers = [asyncio.create_task(worker()) for _ in range(min(self.concurrency, len(items)))]
        try:
            finished = 0
            while finished < len(workers):
                item = await queue.get()
                if item is None:
                    finished += 1
                    continue
                yield item
            if errors:
                raise errors[0]
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
