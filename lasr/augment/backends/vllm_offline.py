"""vLLM offline generation (optional extra: ``pip install vllm``; imported only when this backend is chosen)."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

from lasr.augment.backends import Backend, BackendError, Completion


class VLLMBackend(Backend):
    """Args:
        model: a model directory or hub id already in the local cache.
        prompt_style: ``chat`` (``LLM.chat``) or ``completion`` (``LLM.generate`` on few-shot text).
        chunk: requests per offline call (results are stored after each chunk).
        engine_options: passed to ``vllm.LLM`` (e.g. ``tensor_parallel_size``); prefix caching is on by default.
    """

    def __init__(self, model: str, prompt_style: str = "chat", chunk: int = 4096, **engine_options):
        try:
            import vllm
        except ImportError as err:
            raise BackendError("the vllm backend needs the optional package vllm (pip install vllm)") from err
        self.vllm = vllm
        self.model_id = f"vllm:{model}"
        self.prompt_style, self.chunk = prompt_style, chunk
        engine_options.setdefault("enable_prefix_caching", True)
        self.llm = vllm.LLM(model=model, **engine_options)

    def _params(self, request, attempt: int):
        s = request.sampling
        stop = ["\n"] if self.prompt_style == "completion" else None
        return self.vllm.SamplingParams(temperature=s.temperature, top_p=s.top_p, top_k=s.top_k or -1, max_tokens=s.max_tokens,
                                        seed=request.attempt_seed(attempt), stop=stop)

    def _run(self, items: list) -> list[Completion]:
        params = [self._params(r, a) for r, a in items]
        if self.prompt_style == "chat":
            outputs = self.llm.chat([r.prompt.chat_messages() for r, _ in items], params, use_tqdm=False)
        else:
            outputs = self.llm.generate([r.prompt.completion_text() for r, _ in items], params, use_tqdm=False)
        return [Completion(o.outputs[0].text, o.outputs[0].finish_reason, len(o.prompt_token_ids or ()),
                           len(o.outputs[0].token_ids)) for o in outputs]

    async def stream(self, items) -> AsyncIterator:
        for start in range(0, len(items), self.chunk):
            chunk = items[start:start + self.chunk]
            for (request, attempt), completion in zip(chunk, await asyncio.to_thread(self._run, chunk)):
                yield request, attempt, completion
