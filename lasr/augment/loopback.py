"""A real OpenAI-compatible chat-completions server on 127.0.0.1 for tests, benchmarks and offline dry runs.

It runs aiohttp.web in a background thread. Faults are injected per request from a queue
(``"429"`` (with ``Retry-After: retry_after``), ``"500"``, ``"400"`` (a content-policy refusal), ``"badutf8"``
(a 200 body that is not UTF-8), ``"timeout"`` (sleeps ``hang_s``), ``"malformed"`` (invalid JSON), ``"drop"``
(closes the connection), ``"length"`` (finish reason length)); every request also waits ``latency_s``.
``answered`` counts, per ``X-Client-Request-Id``, the answers delivered to a client still connected (what a
paid API bills). The default answer is
a deterministic rewording of the last user message, so it passes the filters.

    lasr augment loopback --port 8000 --latency 0.05    # standalone
"""

from __future__ import annotations

import asyncio
import collections
import socket
import threading
import time
from typing import Callable

from aiohttp import web


def _client_gone(request: web.Request) -> bool:
    """Whether the client closed its connection (killed or timed out): a peek at the socket reads EOF. Its
    answer is then never delivered, so it is not counted in ``answered``."""
    transport = request.transport
    if transport is None or transport.is_closing():
        return True
    wrapped = transport.get_extra_info("socket")
    if wrapped is None:
        return False
    try:
        with socket.fromfd(wrapped.fileno(), wrapped.family, wrapped.type) as sock:  # a dup: asyncio's is wrapped
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


def default_answer(messages: list[dict], body: dict) -> str:
    """``In this recording, <last user message with a lower-case first letter>`` (differs from the source)."""
    text = messages[-1]["content"].strip() if messages else ""
    return "In this recording, " + (text[:1].lower() + text[1:] if text else "nothing happens.")


class LoopbackChatServer:
    """Args:
        latency_s: delay of every request in seconds.
        answer: ``(messages, body) -> content``.
        hang_s: how long a ``timeout`` fault sleeps before answering.
    """

    def __init__(self, latency_s: float = 0.0, answer: Callable[[list, dict], str] = default_answer,
                 hang_s: float = 30.0, port: int = 0):
        self.latency_s, self.answer, self.hang_s, self.port = latency_s, answer, hang_s, port
        self.faults: collections.deque[str] = collections.deque()
        self.request_ids: collections.Counter = collections.Counter()
        self.answered: collections.Counter = collections.Counter()
        self.arrivals: collections.defaultdict[str, list[float]] = collections.defaultdict(list)
        self.retry_after = "0"
        self.last_answer_at = 0.0  # time.monotonic() of the last answer delivered
        self.paused = threading.Event()  # while set, requests wait before answering (tests: kill a client mid-flight)
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.request_ids[request.headers.get("X-Client-Request-Id", "")] += 1
            self.arrivals[request.headers.get("X-Client-Request-Id", "")].append(time.monotonic())
            fault = self.faults.popleft() if self.faults else None
        try:
            body = await request.json()
            await asyncio.sleep(self.latency_s)
            if fault == "429":
                return web.json_response({"error": {"message": "rate limited"}}, status=429,
                                         headers={"Retry-After": self.retry_after})
            if fault == "400":
                return web.json_response({"error": {"message": "refused by the content policy",
                                                    "code": "content_policy_violation"}}, status=400)
            if fault == "badutf8":
                return web.Response(body=b'{"choices": [{"message": {"content": "caf\xe9 \xff\xfe"}}]}',
                                    content_type="application/json")
            if fault == "500":
                return web.json_response({"error": {"message": "boom"}}, status=500)
            if fault == "timeout":
                await asyncio.sleep(self.hang_s)
            if fault == "malformed":
                return web.Response(text='{"choices": [ {"message": ', content_type="application/json")
            if fault == "drop":
                request.transport.close()
                return web.Response(status=500)
            while self.paused.is_set():
                await asyncio.sleep(0.01)
            content = self.answer(body.get("messages", []), body)
            if not _client_gone(request):
                with self._lock:
                    self.answered[request.headers.get("X-Client-Request-Id", "")] += 1
                    self.last_answer_at = time.monotonic()
            return web.json_response({
                "id": "chatcmpl-loopback", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", ""),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "finish_reason": "length" if fault == "length" else "stop"}],
                "usage": {"prompt_tokens": sum(len(m["content"].split()) for m in body.get("messages", [])),
                          "completion_tokens": len(content.split())}})
        finally:
            with self._lock:
                self.in_flight -= 1

    def start(self) -> "LoopbackChatServer":
        ready = threading.Event()

        async def serve() -> None:
            app = web.Application()
            app.router.add_post("/v1/chat/completions", self._handle)
            self._runner = web.AppRunner(app, handle_signals=False)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=1024)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]
            ready.set()

        def thread_main() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=thread_main, daemon=True, name="loopback-llm")
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("loopback server did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None

    def __enter__(self) -> "LoopbackChatServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
