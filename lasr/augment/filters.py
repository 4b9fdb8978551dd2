"""Parse an LLM answer into one caption and decide whether to keep it (``None``) or why not (a reason string).

Think blocks (``<think>...</think>``) are removed before anything is judged. Rejection reasons: ``empty``,
``malformed`` (chat markers, labels or braces left over), ``truncated`` (finish reason ``length``),
``refusal`` (meta talk: "as an AI", "I'm sorry", "the caption"), ``prompt_echo``, ``too_short``, ``too_long``,
``identical`` (same as the source after normalisation), ``banned_word``, ``repetition`` (a generation loop),
``garbage`` (keyboard mash, symbols), ``wrong_language`` (py3langid language identification),
``off_topic`` (nothing in common with the source), ``duplicate`` (at export, see :func:`normalise`).
Measured by ``benchmarks/reply_filter.py`` on labelled replies: ``tests/augment/fixtures/replies.jsonl`` (tuned
on), ``replies_heldout.jsonl`` (held out) and two fresh sets (docs/augment.md, Filters).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass

from lasr.data.caption_table import normalise

THINK = re.compile(r"<think>.*?(</think>|\Z)", re.IGNORECASE | re.DOTALL)  # an unclosed block runs to the end
MARKER = r"<\|[^|>]*\|>|<(?:start|end)_of_turn>|</?s>|<bos>|<eos>|\[/?INST\]"
CHAT_MARKERS = re.compile(rf"{MARKER}|^\s*(assistant|model)\s*\n", re.IGNORECASE)
ROLE_AFTER_MARKER = re.compile(rf"(?:{MARKER})\s*(?:(?:assistant|model|user|system)\b)?[:\s]*", re.IGNORECASE)
LEADING_LABEL = re.compile(r"^\s*(?:(?:output|final|new|rewritten|paraphrased|english|the)\s+)*"
                           r"(?:output|caption|paraphrase|rewrite|answer|translation|english|mixture|"
                           r"description|sentence|text|rewritten|paraphrased)s?\s*\d*\s*[:\-\u2013]\s*",
                           re.IGNORECASE)
PREAMBLE = re.compile(r"^\s*(?:sure|certainly|of course|okay|ok|absolutely|here(?:'s| is| are| you go| it is))\b"
                      r"[^\n]*?(?::\s*|\.\s+|!\s+|\n|$)", re.IGNORECASE)
# list items ("1. ", "2) ", "- ", "* ") and markdown emphasis around a leading label ("**Caption:**", "__Label__:")
LIST_MARKER = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*\u2022])\s+")
EMPHASISED_LABEL = re.compile(r"^\s*(\*{1,2}|_{1,2})([^*_\n]{1,40}?)\1\s*(:?)")
REFUSAL = re.compile(r"\b(as an ai|language model|i cannot|i can't|i can not|i'm sorry|i am sorry|sorry|"
                     r"i don't|i do not|here is|here's|sure[,!]|certainly[,!]|happy to help|rewritten caption|"
                     r"the caption|this caption|caption|captions|paraphrase|rewrite|the user)\b", re.IGNORECASE)
ROLE_NAMES = {"assistant", "model", "user", "system"}
# English function words: a reply made of words cannot be English without some of them (a short caption has 1+)
ENGLISH_FUNCTION_WORDS = frozenset(
    "a an the and or but of in on at by for from with without into onto over under through as while then "
    "is are was were be been being it its this that these those there their they he she his her someone "
    "something after before during until near behind above below off out up down again away past".split())


@dataclass(frozen=True)
class FilterConfig:
    """Acceptance limits (word counts are whitespace tokens). ReCLAP keeps rewrites under 30 words.

    ``min_english`` is the least probability of English (py3langid, normalised over its 97 languages) for an
    answer without English function words; ``max_repeat`` the most times one word 2-gram may occur;
    ``min_similarity`` the least MiniLM cosine to the source for an answer that shares no content word with
    it (off-topic text); ``max_nonword_fraction`` the largest share of tokens that cannot be words
    (keyboard mash)."""

    min_words: int = 3
    max_words: int = 30
    echo_overlap: float = 0.7   # word-set Jaccard with the instruction or a few-shot answer that counts as an echo
    min_english: float = 0.5
    max_repeat: int = 2
    min_similarity: float = 0.3
    max_nonword_fraction: float = 0.3


def _jaccard(a: str, b: str) -> float:
    sa, sb = set(a.split()), set(b.split())
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def parse_answer(raw: str) -> tuple[str, bool]:
    """Return ``(caption, had_markers)``: think blocks removed, then the first non-empty line with chat
    markers (and a role name right after one), list markers ("1. ", "- "), label prefixes ("Output Caption:",
    "**Caption:**"), preambles ("Sure, here is the paraphrase:"), quotes and markdown emphasis removed. Base models continue the few-shot pattern, so
    everything after the first caption line is dropped."""
    raw = THINK.sub("\n", raw)
    had_markers = bool(CHAT_MARKERS.search(raw))
    text = ROLE_AFTER_MARKER.sub("\n", raw)
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and line.strip().lower().rstrip(":") not in ROLE_NAMES]
    while lines:
        line, previous = lines[0], None
        while line != previous:  # "Sure! Here's a rewritten caption: Output: ..." has several layers
            line = EMPHASISED_LABEL.sub(r"\2\3 ", LIST_MARKER.sub("", line, count=1), count=1)
            previous, line = line, LEADING_LABEL.sub("", PREAMBLE.sub("", line, count=1)).strip()
        if line:
            break
        lines = lines[1:]  # a preamble or label alone on its line: the caption follows
    if not lines:
        return "", had_markers
    line = line.strip("*_ ").strip('"\u201c\u201d\'').strip()
    line = re.sub(r"\s*\[[^\]]*\]\s*", " ", line).replace("<br>", " ")
    return " ".join(line.split()), had_markers and not line


@functools.lru_cache(maxsize=1)
def _language_identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def english_probability(text: str) -> float:
    """P(English) of ``text`` from py3langid (weights ship in the wheel; offline)."""
    ranks = dict(_language_identifier().rank(text))
    return float(ranks.get("en", 0.0))


def is_english(text: str, config: FilterConfig = FilterConfig()) -> bool:
    """English function words present, or a language-ID probability of English of at least ``min_english``.
    (A byte ratio rejects "café"; language ID alone calls short captions with a French loan word French.)"""
    words = normalise(text).split()
    if any(ord(ch) > 0x2fff for ch in text):  # CJK and other scripts English captions do not use
        return False
    function = sum(w in ENGLISH_FUNCTION_WORDS for w in words)
    if words and function >= max(1, round(0.15 * len(words))) and english_probability(text) > 0.01:
        return True
    return english_probability(text) >= config.min_english


def _nonword(token: str) -> bool:
    letters = re.sub(r"[^a-z]", "", token.lower())
    if not letters:
        return not token.isdigit() or len(token) > 4
    return (not re.search(r"[aeiouy]", letters) or re.search(r"[^aeiouy]{5,}", letters) is not None
            or re.search(r"(.)\1\1", letters) is not None)


def repeats(text: str, max_repeat: int) -> bool:
    """A generation loop: some word 2-gram occurs more than ``max_repeat`` times, or one word makes up half
    of an answer of 6+ words."""
    words = normalise(text).split()
    grams = Counter(zip(words, words[1:]))
    counts = Counter(w for w in words if w not in ENGLISH_FUNCTION_WORDS)
    return (bool(grams) and max(grams.values()) > max_repeat) or \
        (len(words) >= 6 and bool(counts) and max(counts.values()) * 2 >= len(words))


def _stems(text: str) -> set[str]:
    return {w[:5] for w in normalise(text).split() if len(w) >= 3 and w not in ENGLISH_FUNCTION_WORDS}


@functools.lru_cache(maxsize=1)
def _minilm():
    from sentence_transformers import SentenceTransformer

    from lasr.models.text import resolve_model_path

    return SentenceTransformer(resolve_model_path("minilm"), device="cpu")


def off_topic(text: str, sources: list[str], min_similarity: float) -> bool:
    """Shares no content word with any source and its MiniLM cosine to all of them is below
    ``min_similarity`` (the model is loaded only for answers that share no word)."""
    if any(_stems(text) & _stems(source) for source in sources if source):
        return False
    emb = _minilm().encode([text] + [s for s in sources if s], normalize_embeddings=True, convert_to_numpy=True)
    return float((emb[1:] @ emb[0]).max()) < min_similarity


def rejection_reason(text: str, *, source: str, finish_reason: str | None, echo_texts: list[str] = (),
                     banned_words: tuple[str, ...] = (), english: bool = True,
                     config: FilterConfig = FilterConfig(), topic_sources: list[str] | None = None) -> str | None:
    """``None`` to accept ``text``, else the reason it is rejected (see the module docstring).
    ``topic_sources``: texts the answer must be about (default: ``source``)."""
    if finish_reason == "length":
        return "truncated"
    if not text:
        return "empty"
    if CHAT_MARKERS.search(text) or LEADING_LABEL.match(text) or "{" in text or "}" in text or "<think" in text:
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
    if repeats(text, config.max_repeat):
        return "repetition"
    if sum(_nonword(w) for w in words) > config.max_nonword_fraction * len(words):
        return "garbage"
    if english and not is_english(text, config):
        return "wrong_language"
    if english and off_topic(text, topic_sources or [source], config.min_similarity):
        return "off_topic"
    return None


def judge(raw: str, finish_reason: str | None, request,
          config: FilterConfig = FilterConfig()) -> tuple[str, str | None]:
    """Parse and filter one answer for ``request`` (an :class:`~lasr.augment.requests.LLMRequest`):
    ``(text, rejection or None)``."""
    text, malformed = parse_answer(raw or "")
    if malformed:
        return text, "malformed"
    original = request.meta.get("original")
    topics = [t for t in (request.source, original, request.meta.get("label"), request.meta.get("description"))
              if isinstance(t, str) and t]
    reason = rejection_reason(text, source=request.source, finish_reason=finish_reason,
                              echo_texts=request.prompt.echo_texts(), banned_words=request.banned_words,
                              english=request.english, config=config, topic_sources=topics)
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
