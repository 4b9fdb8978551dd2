"""LLM backends behind one interface: :class:`Backend.stream` turns (request, attempt) pairs into completions.

* ``openai``: any OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM serve, llama.cpp, Ollama, hosted);
* ``local``: Hugging Face ``transformers`` generation from a local directory or GGUF file, batched;
* ``vllm``: vLLM offline generation (optional extra, imported only when chosen);
* ``batch``: OpenAI Batch API JSONL files (export pending requests, import results).

Every backend identifies a request by its wire id (``LLMRequest.wire_id(attempt)``, the ``custom_id``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator

from lasr.errors import LasrError


class BackendError(LasrError):
    """The backend is unreachable or refused the job (after retries); the message names the URL or model."""


@dataclass(frozen=True)
class Completion:
    """One answer. ``finish_reason`` is ``stop``, ``length``, or ``error`` (then ``error`` says why)."""

    text: str | None
    finish_reason: str | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None


class Backend:
    """Base class. ``model_id`` goes into every request's cache key; ``prompt_style`` is ``chat`` (messages)
    or ``completion`` (plain few-shot text, for base models)."""

    model_id: str = ""
    prompt_style: str = "chat"

    def stream(self, items: list[tuple[Any, int]]) -> AsyncIterator[tuple[Any, int, Completion]]:
        """Yield ``(request, attempt, completion)`` as answers arrive (any order)."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release sessions / models."""


def make_backend(name: str, **options: Any) -> Backend:
    """Construct backend ``name`` (openai | local | vllm | batch) from keyword options."""
    if name == "openai":
        from lasr.augment.backends.openai_http import OpenAIChatBackend
        return OpenAIChatBackend(**options)
    if name == "local":
        from lasr.augment.backends.local_hf import LocalHFBackend
        return LocalHFBackend(**options)
    if name == "vllm":
        from lasr.augment.backends.vllm_offline import VLLMBackend
        return VLLMBackend(**options)
    if name == "batch":
        from lasr.augment.backends.batch_api import BatchFileBackend
        return BatchFileBackend(**options)
    raise LasrError(f"unknown backend {name!r}; choose openai, local, vllm or batch")
