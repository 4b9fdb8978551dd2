"""The OpenAI-compatible backend against a real loopback HTTP server: retries, timeouts, limits, keys."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from lasr.augment.backends import BackendError
from lasr.augment.backends.openai_http import OpenAIChatBackend
from lasr.augment.prompts import Template
from lasr.augment.requests import Sampling, make_request


def _requests(n: int):
    template = Template.load("paraphrase")
    return [make_request(kind="paraphrase", stage="paraphrase", model="m", template=template,
                         fields={"source": f"a dog barks {i} times"}, sampling=Sampling(), sample_index=0)
            for i in range(n)]


def _collect(backend, requests):
    async def go():
        try:
            return [item async for item in backend.stream([(r, 0) for r in requests])]
        finally:
            await backend.aclose()
    return asyncio.run(go())


def test_all_faults_are_retried_and_every_request_answered(server):
    server.faults.extend(["429", "500", "malformed", "drop", "timeout"])
    server.hang_s = 2.0
    backend = OpenAIChatBackend(server.url, "m", concurrency=4, timeout_s=0.5, backoff_s=0.01)
    requests = _requests(12)
    out = _collect(backend, requests)
    assert sorted(r.custom_id for r, _, _ in out) == sorted(r.custom_id for r in requests)
    assert all(c.finish_reason == "stop" and c.text.startswith("In this recording") for _, _, c in out)
    assert backend.retries == 5
    assert server.requests == 12 + 5
    assert server.request_ids[requests[0].custom_id] >= 1  # the custom_id travels as X-Client-Request-Id


def test_concurrency_limit_is_respected_and_used(server):
    server.latency_s = 0.05
    backend = OpenAIChatBackend(server.url, "m", concurrency=5)
    start = time.monotonic()
    assert len(_collect(backend, _requests(30))) == 30
    elapsed = time.monotonic() - start
    assert server.max_in_flight == 5
    assert elapsed < 30 * 0.05 / 2  # far faster than sequential


def test_backend_down_fails_fast_naming_the_url():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = OpenAIChatBackend(f"http://127.0.0.1:{port}/v1", "m", max_retries=2, backoff_s=0.01)
    start = time.monotonic()
    with pytest.raises(BackendError, match=f"127.0.0.1:{port}/v1/chat/completions failed after 3 tries"):
        _collect(backend, _requests(3))
    assert time.monotonic() - start < 5


def test_persistent_429_gives_up_after_retries(server):
    server.faults.extend(["429"] * 10)
    backend = OpenAIChatBackend(server.url, "m", max_retries=2, backoff_s=0.01)
    with pytest.raises(BackendError, match="HTTP 429"):
        _collect(backend, _requests(1))
    assert server.requests == 3


def test_malformed_body_after_all_retries_becomes_an_error_completion(server):
    server.faults.extend(["malformed"] * 3)
    backend = OpenAIChatBackend(server.url, "m", max_retries=2, backoff_s=0.01)
    (_, _, completion), = _collect(backend, _requests(1))
    assert completion.finish_reason == "error" and completion.error == "malformed"


def test_missing_api_key_names_the_variable(monkeypatch, server):
    monkeypatch.delenv("LASR_TEST_KEY", raising=False)
    with pytest.raises(BackendError, match="set LASR_TEST_KEY"):
        OpenAIChatBackend(server.url, "m", api_key_env="LASR_TEST_KEY")
    monkeypatch.setenv("LASR_TEST_KEY", "sk-secret-123")
    backend = OpenAIChatBackend(server.url, "m", api_key_env="LASR_TEST_KEY")
    assert backend._headers("x")["Authorization"] == "Bearer sk-secret-123"
    assert "sk-secret" not in repr(vars(backend))  # only the variable name is kept


def test_vllm_backend_is_optional_and_imported_only_when_chosen():
    import importlib.util
    import sys

    import lasr.cli.augment  # noqa: F401 - the CLI module must not import vllm
    assert "vllm" not in sys.modules
    if importlib.util.find_spec("vllm") is None:
        from lasr.augment.backends import make_backend

        with pytest.raises(BackendError, match="pip install vllm"):
            make_backend("vllm", model="some/model")
