"""Parse an LLM answer into one caption and decide whether to keep it (``None``) or why not (a reason string).

Rejection reasons: ``empty``, ``malformed`` (chat markers or labels left over), ``truncated`` (finish reason
``length``), ``refusal`` (off-topic meta talk: "as an AI", "here is..."), ``prompt_echo``, ``too_short``,
``too_long``, ``identical`` (same as the source after normalisation), ``banned_word``, ``wrong_language``
(non-ASCII letters in an English answer), ``duplicate`` (at export, see :func:`normalise`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lasr.data.caption_table import normalise

CHAT_MARKERS = re.compile(r"<\|[^|>]*\|>|<(start|end)_of_turn>|</?s>|<bos>|<eos>|\[/?INST\]|^\s*(assistant|model)\s*\n",
                          re.IGNORECASE)
LEADING_LABEL = re.compile(r"^\s*(output|caption|paraphrase|rewrite|answer|translation|english|mixture|"
                           r"description|rewritten caption|new caption)\s*[:\-]\s*", re.IGNORECASE)
REFUSAL = re.compile(r"\b(as an ai|language model|i cannot|i can't|i'm sorry|here is|here's|sure[,!]|"
                     r"certainly[,!]|rewritten caption|the caption)\b", re.IGNORECASE)
ROLE_NAMES = {"assistant", "model", "user", "system"}
NOT_ENGLISH = re.compile(r"[^\x00-\x7f\u2019\u2018\u201c\u201d\u2013\u2014]")


@dataclass(frozen=True)
class FilterConfig:
    """Acceptance limits (word counts are whitespace tokens). ReCLAP keeps rewrites under 30 words."""

    min_words: int = 3
    max_words: int = 30
    max_non_ascii_fraction: float = 0.02
    echo_overlap: float = 0.7   # word-set Jaccard with the instruction or a few-shot answer that counts as an echo


def _jaccard(a: str, b: str) -> float:
    sa, sb = set(a.split()), set(b.split())
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def parse_answer(raw: str) -> tuple[str, bool]:
    """Return ``(caption, had_markers)``: the first non-empty line, label prefix, quotes and stray chat markers
    removed. Base models continue the few-shot pattern, so everything after the first line is dropped."""
    had_markers = bool(CHAT_MARKERS.search(raw))
    text = CHAT_MARKERS.sub("\n", raw)
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and line.strip().lower() not in ROLE_NAMES]
    if not lines:
        return "", had_markers
    line = LEADING_LABEL.sub("", lines[0]).strip().strip('"\u201c\u201d\'').strip()
    line = re.sub(r"\s*\[[^\]]*\]\s*", " ", line).replace("<br>", " ")
    return " ".join(line.split()), had_markers and not line


def rejection_reason(text: str, *, source: str, finish_reason: str | None, echo_texts: list[str] = (),
                     banned_words: tuple[str, ...] = (), english: bool = True,
                     config: FilterConfig = FilterConfig()) -> str | None:
    """``None`` to accept ``text``, else the reason it is rejected (see the module docstring)."""
    if finish_reason == "length":
        return "truncated"
    if not text:
        return "empty"
    if CHAT_MARKERS.search(text) or LEADING_LABEL.match(text) or "{" in text or "}" in text:
        return "malformed"
    if REFUSAL.search(text):
        return "refusal"
    norm = normalise(text)
    if any(_jaccard(norm, normalise(echo)) >= config.echo_overlap for echo in echo_texts if echo):
        return "prompt_echo"
    words = text.split()
    if len(words) < config.min_words:
        return "too_short"
    if len(words) > config.max_words:
        return "too_long"
    if norm == normalise(source):
        return "identical"
    tokens = set(norm.split())
    if any(word.lower() in tokens for word in banned_words):
        return "banned_word"
    if english and len(NOT_ENGLISH.findall(text)) > config.max_non_ascii_fraction * len(text):
        return "wrong_language"
    return None


def judge(raw: str, finish_reason: str | None, request,
          config: FilterConfig = FilterConfig()) -> tuple[str, str | None]:
    """Parse and filter one answer for ``request`` (an :class:`~lasr.augment.requests.LLMRequest`):
    ``(text, rejection or None)``."""
    text, malformed = parse_answer(raw or "")
    if malformed:
        return text, "malformed"
    reason = rejection_reason(text, source=request.source, finish_reason=finish_reason,
                              echo_texts=request.prompt.echo_texts(), banned_words=request.banned_words,
                              english=request.english, config=config)
    original = request.meta.get("original")
    if reason is None and original and normalise(text) == normalise(original):
        reason = "identical"
    return text, reason


FIDELITY_KINDS = ("paraphrase", "rewrite", "backtranslate")  # kinds whose output should mean the same as the source


def fidelity_scores(sources: list[str], texts: list[str], batch_size: int = 64):
    """Cosine between MiniLM (all-MiniLM-L6-v2, the packaged copy) embeddings of each source and its output.

    Returns a float numpy array ``(N,)``. Paraphrases far from their source drifted (hallucination); ones
    almost identical to it add nothing."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from lasr.models.text import resolve_model_path

    if not texts:
        return np.zeros(0)
    model = SentenceTransformer(resolve_model_path("minilm"), device="cpu")
    a = model.encode(sources, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    b = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    return (a * b).sum(axis=1)
