"""Local Hugging Face ``transformers`` generation, batched, from a directory or a GGUF file.

Base models (such as the packaged Gemma-3 270M) are prompted with plain few-shot text and stop at the end of
the answer line; chat models can use their chat template (``prompt_style="chat"``). Generation runs in a
worker thread so the job's event loop stays responsive. Sampling is seeded per batch from the first
request's seed, so outputs are reproducible for the same batch composition.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

from lasr.augment.backends import Backend, Completion


class _NewlineStop:
    """Stop each row once its answer (after leading whitespace) contains a newline. Cheaper than
    ``stop_strings``, which scans the whole vocabulary (262k tokens for Gemma) on every call."""

    def __init__(self, tokenizer, prompt_len: int):
        self.tokenizer, self.prompt_len = tokenizer, prompt_len

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_len:], skip_special_tokens=True)
        return torch.tensor([("\n" in text.lstrip()) for text in texts], device=input_ids.device)


class LocalHFBackend(Backend):
    """Args:
        model: ``gemma3-270m`` (packaged GGUF, the default), a model directory, or a ``.gguf`` file.
        batch_size: prompts per ``generate`` call.
        prompt_style: ``completion`` (few-shot text, base models) or ``chat`` (tokenizer chat template).
        threads: torch CPU threads (None: leave as is).
    """

    def __init__(self, model: str = "gemma3-270m", batch_size: int = 8, prompt_style: str = "completion",
                 threads: int | None = None):
        import torch

        from lasr.augment.localmodel import load_causal_lm

        if threads:
            torch.set_num_threads(threads)
        self.model_id = f"local:{model}"
        self.prompt_style = prompt_style
        self.batch_size = batch_size
        self.lm, self.tokenizer = load_causal_lm(model)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def _prompt(self, request) -> str:
        if self.prompt_style == "chat":
            return self.tokenizer.apply_chat_template(request.prompt.chat_messages(), tokenize=False,
                                                      add_generation_prompt=True)
        return request.prompt.completion_text()

    def generate_batch(self, items: list) -> list[Completion]:
        """Generate one answer per ``(request, attempt)`` in ``items`` (all with the same sampling)."""
        import torch
        from transformers import StoppingCriteriaList

        sampling = items[0][0].sampling
        encoded = self.tokenizer([self._prompt(r) for r, _ in items], return_tensors="pt", padding=True)
        torch.manual_seed(items[0][0].attempt_seed(items[0][1]))
        stop = ["\n"] if self.prompt_style == "completion" else None
        criteria = StoppingCriteriaList([_NewlineStop(self.tokenizer, encoded["input_ids"].shape[1])] if stop else [])
        with torch.inference_mode():
            output = self.lm.generate(**encoded, max_new_tokens=sampling.max_tokens,
                                      do_sample=sampling.temperature > 0, temperature=sampling.temperature or None,
                                      top_p=sampling.top_p, top_k=sampling.top_k, stopping_criteria=criteria,
                                      pad_token_id=self.tokenizer.pad_token_id)
        prompt_len = encoded["input_ids"].shape[1]
        completions = []
        for row, mask in zip(output[:, prompt_len:], encoded["attention_mask"]):
            ids = row.tolist()
            eos = self.tokenizer.eos_token_id
            n_new = len(ids)
            if self.tokenizer.pad_token_id in ids:
                n_new = ids.index(self.tokenizer.pad_token_id) if self.tokenizer.pad_token_id != eos else n_new
            text = self.tokenizer.decode(ids[:n_new], skip_special_tokens=True)
            stopped = (stop and "\n" in text.lstrip()) or eos in ids
            finish = "stop" if stopped or n_new < sampling.max_tokens else "length"
            completions.append(Completion(text, finish, int(mask.sum()), n_new))
        return completions

    async def stream(self, items) -> AsyncIterator:
        groups: dict[tuple, list] = {}
        for item in items:
            s = item[0].sampling
            groups.setdefault((s.temperature, s.top_p, s.top_k, s.max_tokens), []).append(item)
        for group in groups.values():
            for start in range(0, len(group), self.batch_size):
                batch = group[start:start + self.batch_size]
                for (request, attempt), completion in zip(batch, await asyncio.to_thread(self.generate_batch, batch)):
                    yield request, attempt, completion
