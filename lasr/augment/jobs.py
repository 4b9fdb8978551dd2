"""Run a kind's stages against a backend: skip what the store already has, judge each answer, retry rejected
requests with a new seed up to ``max_attempts``, commit every answer as it arrives, and summarise."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

from lasr.augment.backends import Backend
from lasr.augment.filters import FilterConfig, judge
from lasr.augment.kinds import Stage
from lasr.augment.store import Store
from lasr.utils.progress import progress as progress_bar

FINAL_FAILURES = ("refused", "undecodable", "malformed")  # sending the same request again gives the same answer


@dataclass
class Summary:
    """Counts of one job run. ``rejections`` counts every rejected attempt by reason, ``failures`` every
    request-level failure (refused, undecodable, malformed) by reason."""

    requests: int = 0          # attempts sent to the backend (including retries)
    cache_hits: int = 0        # logical requests already finished in the store
    earlier_failures: int = 0  # failed in an earlier run; not sent again (see `lasr augment retry`)
    accepted: int = 0
    exhausted: int = 0         # requests still rejected after max_attempts
    rejections: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def table(self) -> str:
        rate = self.requests / self.seconds if self.seconds else 0.0
        rows = [("requests sent", self.requests), ("cache hits", self.cache_hits), ("accepted", self.accepted),
                ("rejected (out of attempts)", self.exhausted)]
        rows += [(f"  rejected: {reason}", n) for reason, n in sorted(self.rejections.items())]
        rows += [("failed (augment retry)", sum(self.failures.values()))]
        rows += [(f"  failed: {reason}", n) for reason, n in sorted(self.failures.items())]
        if self.earlier_failures:
            rows += [("earlier failures skipped", self.earlier_failures)]
        rows += [("prompt tokens", self.prompt_tokens), ("completion tokens", self.completion_tokens),
                 ("time (s)", f"{self.seconds:.1f}"), ("requests/s", f"{rate:.2f}")]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


async def run_stage(requests, backend: Backend, store: Store, summary: Summary, max_attempts: int = 3,
                    filter_config: FilterConfig = FilterConfig(), progress: bool = True, label: str = "") -> None:
    """Send every unfinished request of one stage; store each answer as it arrives. A request-level failure
    (refusal, unreadable body) is stored as a ``failed`` row with its reason and not sent again until marked
    with :meth:`Store.mark_retry`; a filter rejection is retried with a new seed up to ``max_attempts``."""
    known = store.status([r.custom_id for r in requests])
    received = store.received() if any(s[0] == "received" for s in known.values()) else {}
    todo = []
    for request in requests:
        state = known.get(request.custom_id)
        if state is not None and state[0] == "received":  # paid for, stored on arrival, never judged: judge now
            attempts, raw, finish, prompt_tokens, completion_tokens = received[request.custom_id]
            text, reason = judge(raw, finish, request, filter_config)
            store.put(request, attempts - 1, raw, text, finish, reason, prompt_tokens, completion_tokens)
            state = known[request.custom_id] = ("rejected" if reason else "accepted", attempts, reason)
        if state is None or state[0] == "retry":
            todo.append((request, 0))
        elif state[0] == "rejected" and state[1] < max_attempts:
            todo.append((request, state[1]))
        elif state[0] == "failed":
            summary.earlier_failures += 1
        else:
            summary.cache_hits += 1
    bar = progress_bar(total=len(todo), desc=label, unit="req", enabled=progress)
    while todo:
        retry = []
        async for request, attempt, completion in backend.stream(todo):
            failed = completion.finish_reason == "error" and completion.error in FINAL_FAILURES
            if completion.finish_reason == "error":
                text, reason = None, completion.error or "error"
            else:  # commit the paid-for answer before judging it (judging may load models, take a while)
                store.put(request, attempt, completion.text, None, completion.finish_reason, None,
                          completion.prompt_tokens, completion.completion_tokens)
                text, reason = judge(completion.text, completion.finish_reason, request, filter_config)
            store.put(request, attempt, completion.text, text, completion.finish_reason, reason,
                      completion.prompt_tokens, completion.completion_tokens, failed=failed)
            summary.requests += 1
            summary.prompt_tokens += completion.prompt_tokens or 0
            summary.completion_tokens += completion.completion_tokens or 0
            if failed:
                summary.failures[reason] += 1
                bar.update()
                continue
            if reason is None:
                summary.accepted += 1
                bar.update()
                continue
            summary.rejections[reason] += 1
            if attempt + 1 < max_attempts:
                retry.append((request, attempt + 1))
            else:
                summary.exhausted += 1
                bar.update()
        todo = retry
    bar.close()


async def run_job_async(stages: list[Stage], backend: Backend, store: Store, **options) -> Summary:
    summary = Summary()
    start = time.monotonic()
    try:
        for name, build in stages:
            await run_stage(build(store), backend, store, summary, label=name, **options)
    finally:
        summary.seconds = time.monotonic() - start
        await backend.aclose()
    return summary


def run_job(stages: list[Stage], backend: Backend, store: Store, **options) -> Summary:
    """Run all stages in order (a stage builds its requests after the previous stage finished)."""
    return asyncio.run(run_job_async(stages, backend, store, **options))
