"""Requests/s of the OpenAI-compatible backend against the loopback server with a fixed latency, next to the
official ``openai`` SDK (``AsyncOpenAI``, same concurrency, its retries off) when it is installed.

The ideal throughput is concurrency / latency (every slot always busy). Run:
    .venv/bin/python benchmarks/augment_throughput.py [--latency 0.05] [--requests 400]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from lasr.augment.backends.openai_http import OpenAIChatBackend
from lasr.augment.loopback import LoopbackChatServer
from lasr.augment.prompts import Template
from lasr.augment.requests import Sampling, make_request


def measure(server: LoopbackChatServer, concurrency: int, n_requests: int) -> float:
    """Requests/s for ``n_requests`` distinct requests at ``concurrency``."""
    template = Template.load("paraphrase")
    requests = [make_request(kind="paraphrase", stage="paraphrase", model="bench", template=template,
                             fields={"source": f"a dog barks {i} times"}, sampling=Sampling(), sample_index=0)
                for i in range(n_requests)]
    backend = OpenAIChatBackend(server.url, "bench", concurrency=concurrency, timeout_s=30.0)

    async def go() -> float:
        start = time.perf_counter()
        count = 0
        async for _ in backend.stream([(r, 0) for r in requests]):
            count += 1
        elapsed = time.perf_counter() - start
        await backend.aclose()
        assert count == n_requests
        return n_requests / elapsed

    return asyncio.run(go())


def measure_sdk(server: LoopbackChatServer, concurrency: int, n_requests: int) -> float:
    """The same requests through ``openai.AsyncOpenAI`` (an asyncio semaphore bounds the concurrency)."""
    import httpx
    import openai

    template = Template.load("paraphrase")
    requests = [make_request(kind="paraphrase", stage="paraphrase", model="bench", template=template,
                             fields={"source": f"a dog barks {i} times"}, sampling=Sampling(), sample_index=1)
                for i in range(n_requests)]

    async def go() -> float:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        client = openai.AsyncOpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=30.0,
                                    http_client=openai.DefaultAsyncHttpxClient(limits=limits))
        gate = asyncio.Semaphore(concurrency)

        async def one(request) -> None:
            async with gate:
                s = request.sampling
                await client.chat.completions.create(model="bench", messages=request.prompt.chat_messages(),
                                                     temperature=s.temperature, top_p=s.top_p,
                                                     max_tokens=s.max_tokens, seed=s.seed)

        start = time.perf_counter()
        await asyncio.gather(*(one(r) for r in requests))
        elapsed = time.perf_counter() - start
        await client.close()
        return n_requests / elapsed

    return asyncio.run(go())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05, help="server latency per request (s)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--requests", type=int, default=0, help="requests per level (default: 10 x concurrency, >= 40)")
    args = parser.parse_args()
    try:
        import openai  # noqa: F401
        sdk = True
    except ImportError:
        sdk = False
    print(f"{'concurrency':>11}  {'requests':>8}  {'aiohttp/s':>9}  {'openai/s':>8}  {'ideal':>8}  {'efficiency':>10}")
    with LoopbackChatServer(latency_s=args.latency) as server:
        for concurrency in args.concurrency:
            n = args.requests or max(40, 10 * concurrency)
            rate = measure(server, concurrency, n)
            sdk_rate = f"{measure_sdk(server, concurrency, n):>8.1f}" if sdk else f"{'n/a':>8}"
            ideal = concurrency / args.latency
            print(f"{concurrency:>11}  {n:>8}  {rate:>9.1f}  {sdk_rate}  {ideal:>8.1f}  {rate / ideal:>10.1%}")


if __name__ == "__main__":
    main()
