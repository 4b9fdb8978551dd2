"""Faithfulness of caption rewrites (paraphrase, rewrite, back-translation): a rewrite keeps every sound source
and every attribute of the original and adds none.

On the demo corpus every caption's facts are known (``mentions`` from :mod:`lasr.data.demo.captions`: event
types in role order and the attributes said about each), so :func:`demo_check` decides exactly, from the demo
grammar's own words and their antonyms. On real data :func:`source_words_kept` is the best offline signal
besides the MiniLM similarity band of ``lasr augment export --fidelity``: the content words of the original
(sound sources and actions) must survive, by stem.
"""

from __future__ import annotations

import re

from lasr.data.caption_table import normalise
from lasr.data.demo import captions as grammar
from lasr.data.demo.captions import ADJECTIVES, ADVERBS

# Words that name each demo event type (stems; a rewrite must keep one of its events' words).
TYPE_WORDS = {
    "pure_tone": ("tone", "note", "sine", "hum"), "harmonic_buzz": ("buzz", "drone", "rasp", "reed", "hum"),
    "rising_chirp": ("chirp", "sweep", "whistl", "glide", "tone"),
    "falling_chirp": ("chirp", "sweep", "whistl", "glide", "tone"),
    "white_noise": ("noise", "hiss", "static", "sizzl"), "pink_noise": ("noise", "roar", "rumbl", "rush", "whoosh"),
    "click_train": ("click", "tick", "tap"), "beep_train": ("beep", "bleep", "puls"),
    "siren": ("siren", "alarm", "wail", "warbl", "waver"), "knocking": ("knock", "thump", "pound"),
}
DIRECTION = {"rising_chirp": ("ris", "rise", "upward", "ascend", "climb", "up"),
             "falling_chirp": ("fall", "downward", "descend", "drop", "down", "lower")}
# Sources that no demo clip contains: a rewrite naming one added a sound.
FOREIGN_SOURCES = ("man", "woman", "person", "people", "voice", "speak", "talk", "child", "dog", "bird", "car",
                   "engine", "tree", "rain", "wind", "water", "music", "crowd", "footstep", "door", "bell", "phone",
                   "traffic", "guitar", "piano", "sing", "laugh", "thunder", "insect", "animal")
_EXTRA = {("loudness", "loud"): ("louder", "booming", "blaring"), ("loudness", "quiet"): ("quieter", "muted", "hushed"),
          ("pitch", "high"): ("shrilly",), ("pitch", "low"): ("deeper", "bass"),  # "climbs higher" is a chirp verb
          ("duration", "short"): ("shorter", "quick burst"), ("duration", "long"): ("longer", "extended"),
          ("rate", "fast"): ("faster", "quick"), ("rate", "slow"): ("slower",)}


def _phrases() -> list[tuple[str, str, str]]:
    """(phrase, attribute, value), longest first (so "at high volume" is loudness, not pitch)."""
    out = []
    for table in (ADJECTIVES, ADVERBS):
        for name, values in table.items():
            for value, words in values.items():
                out += [(w.lower(), name, value) for w in words]
    out += [(w, name, value) for (name, value), words in _EXTRA.items() for w in words]
    return sorted(set(out), key=lambda item: -len(item[0]))


PHRASES = _phrases()
NEUTRAL = (" short pause ", " short recording ", " a moment later ")  # template phrases, not event attributes


def _grammar_words() -> frozenset[str]:
    texts = list(grammar.PLACES) + [t for group in grammar.TEMPLATES.values() for t in group]
    texts += [w for table in (grammar.NOUNS, grammar.VERBS) for words in table.values() for w in words]
    texts += [p for p, _, _ in PHRASES]
    return frozenset(normalise(" ".join(texts).replace("{", " ").replace("}", " ")).split())


GRAMMAR_WORDS = _grammar_words()  # "a speaker plays": words of the demo grammar never count as a new source


def attribute_words(text: str) -> set[tuple[str, str]]:
    """``(attribute, value)`` pairs the text states, from the demo grammar's words (longest phrase wins)."""
    rest, found = " " + normalise(text.replace("-", " ")) + " ", set()
    for neutral in NEUTRAL:
        rest = rest.replace(neutral, " | ")
    for phrase, name, value in PHRASES:
        pattern = " " + normalise(phrase.replace("-", " ")) + " "
        if pattern in rest:
            found.add((name, value))
            rest = rest.replace(pattern, " | ")
    return found


def _has_stem(words: list[str], stems) -> bool:
    return any(w.startswith(s) for w in words for s in stems)


def demo_check(mentions: list[dict], rewrite: str) -> list[str]:
    """Problems of ``rewrite`` against the demo caption facts ``mentions`` (empty list: faithful)."""
    words = normalise(rewrite).split()
    problems = []
    for mention in mentions:
        if not _has_stem(words, TYPE_WORDS[mention["type"]]):
            problems.append(f"lost {mention['type']}")
        if mention["type"] in DIRECTION:
            other = "falling_chirp" if mention["type"] == "rising_chirp" else "rising_chirp"
            if _has_stem(words, DIRECTION[other]) and not _has_stem(words, DIRECTION[mention["type"]]):
                problems.append(f"{mention['type']} reversed")
    said = attribute_words(rewrite)
    stated = {(name, value) for m in mentions for name, value in m["attributes"].items()}
    for name, value in stated - said:
        problems.append(f"lost {name}={value}")
    for name, value in said - stated:
        flipped = any(n == name for n, _ in stated)
        problems.append(f"{'flipped' if flipped else 'added'} {name}={value}")
    if _has_stem([w for w in words if w not in GRAMMAR_WORDS], FOREIGN_SOURCES):
        problems.append("added a source")
    return sorted(set(problems))


def source_words_kept(original: str, rewrite: str, min_share: float = 0.5) -> bool:
    """Real data: at least ``min_share`` of the original's content words (5-letter stems, function words
    excluded) occur in the rewrite. A rough signal: synonyms count as lost."""
    from lasr.augment.filters import ENGLISH_FUNCTION_WORDS

    def stems(text: str) -> set[str]:
        return {w[:5] for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 3 and w not in ENGLISH_FUNCTION_WORDS}

    wanted = stems(original)
    return not wanted or len(wanted & stems(rewrite)) / len(wanted) >= min_share
