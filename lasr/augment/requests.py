"""One LLM request: its rendered prompt, sampling parameters and content-hash ``custom_id``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from lasr.augment.prompts import Prompt, Template


@dataclass(frozen=True)
class Sampling:
    """Decoding parameters (part of the cache key). ``max_tokens`` bounds the answer length in tokens."""

    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 64
    seed: int = 0
    top_k: int | None = None     # None: the backend's default (no top-k cut)

    def as_dict(self) -> dict[str, Any]:
        out = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
               "seed": self.seed}
        return out if self.top_k is None else {**out, "top_k": self.top_k}  # keys of older rows stay valid


@dataclass(frozen=True)
class LLMRequest:
    """A logical request. ``custom_id`` hashes model id, template id/version/digest, the rendered prompt (so the
    source text), sampling parameters, seed and sample index; it is the cache key in the store and the
    ``custom_id`` of Batch API lines. ``meta`` carries what export needs (clip key, slot, pair, ops, ...)."""

    custom_id: str
    kind: str
    stage: str
    model: str
    template: str
    prompt: Prompt
    sampling: Sampling
    sample_index: int
    source: str
    banned_words: tuple[str, ...] = ()
    english: bool = True
    meta: dict[str, Any] = field(default_factory=dict)

    def attempt_seed(self, attempt: int) -> int:
        """Seed of retry ``attempt`` (0 = first try): a rejected output is retried with a different seed."""
        return self.sampling.seed + 7919 * self.sample_index + 104729 * attempt

    def wire_id(self, attempt: int) -> str:
        """Id sent to a backend for one attempt (``custom_id`` for the first, ``custom_id.N`` for retries)."""
        return self.custom_id if attempt == 0 else f"{self.custom_id}.{attempt}"


def make_request(*, kind: str, stage: str, model: str, template: Template, fields: dict[str, str],
                 sampling: Sampling, sample_index: int, english: bool = True,
                 meta: dict[str, Any] | None = None) -> LLMRequest:
    """Render ``template`` with ``fields`` (fails on a missing placeholder) and hash the request."""
    prompt = template.render(**fields)
    key = {"model": model, "template": template.tag, "template_digest": template.digest,
           "prompt": prompt.completion_text(), "sampling": sampling.as_dict(), "sample_index": sample_index}
    custom_id = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    return LLMRequest(custom_id, kind, stage, model, template.tag, prompt, sampling, sample_index,
                      fields["source"], template.banned_words, english, dict(meta or {}))
