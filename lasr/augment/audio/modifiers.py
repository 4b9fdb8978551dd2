"""Truthful modifier captions for transformed clips, and their counterfactual (hard-negative) captions.

A transformed item is a list of :class:`Part` s (one per source clip, in playback order) combined by
``single``, ``concat`` ("A, then B") or ``mix`` ("A while B"). Each part carries the modifiers its ops
justify, as ``(axis, direction)`` pairs: ``("level", +1)`` = louder than the original, ``("pitch", -1)`` =
deeper, ``("speed", +1)`` = faster. Only ops large enough to be audible get a modifier (see
:class:`ModifierRules`), so the caption never claims a change that is not there.

Template form (all words are config): ``"Loud, high-pitched: a dog barks, then faint: a car passes"``.
A counterfactual flips exactly one modifier word (loud<->faint, high-pitched<->deep, fast<->slow) or, for a
concatenation without modifiers, reverses the order of the parts.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

AXES = ("level", "pitch", "speed")
# Which caption axes an op changes. Speed is tape-style (sox ``speed``): it moves pitch and durations too, so
# a caption that talks about any of them rules it out, and its pitch effect enters the net pitch word.
OP_AXES = {"gain_db": ("level",), "pitch_semitones": ("pitch",), "speed": ("speed", "pitch", "duration"),
           "crop_fraction": ()}


def net_semitones(pitch_semitones: float = 0.0, speed: float = 1.0) -> float:
    """Pitch change of a part after a pitch shift and a tape-style speed change (which scales every frequency)."""
    return pitch_semitones + 12.0 * math.log2(speed)


@dataclass
class ModifierRules:
    """When an applied op earns a modifier word, and which words are used.

    Args:
        min_gain_db: |applied gain| in dB below which no loudness word is added (the level barely changed).
        min_pitch_semitones: |applied shift| below which no pitch word is added.
        min_speed_change: |applied speed - 1| below which no speed word is added.
        words: ``axis -> [word for direction -1, word for direction +1]``.
        template: how a part with modifiers is written; ``{modifiers}`` (comma-joined, first capitalised),
            ``{caption}`` (first letter lower-cased, trailing period dropped).
        then / while_: joiners of concatenated / mixed parts.
    """

    min_gain_db: float = 3.0
    min_pitch_semitones: float = 1.0
    min_speed_change: float = 0.1
    words: dict[str, list[str]] = field(default_factory=lambda: {
        "level": ["faint", "loud"], "pitch": ["deep", "high-pitched"], "speed": ["slow", "fast"]})
    template: str = "{modifiers}: {caption}"
    then: str = ", then "
    while_: str = " while "

    def modifiers_for(self, gain_db: float = 0.0, semitones: float = 0.0, speed: float = 1.0) -> list[tuple[str, int]]:
        """Modifiers justified by the *applied* op values (not the requested ones)."""
        out = []
        if abs(gain_db) >= self.min_gain_db:
            out.append(("level", 1 if gain_db > 0 else -1))
        if abs(semitones) >= self.min_pitch_semitones:
            out.append(("pitch", 1 if semitones > 0 else -1))
        if abs(speed - 1.0) >= self.min_speed_change:
            out.append(("speed", 1 if speed > 1 else -1))
        return out

    def word(self, axis: str, direction: int) -> str:
        return self.words[axis][1 if direction > 0 else 0]


@dataclass
class Part:
    """One source clip of a transformed item: its caption and the modifiers its ops justify."""

    caption: str
    modifiers: list[tuple[str, int]] = field(default_factory=list)


def _clean(caption: str) -> str:
    caption = caption.strip().rstrip(".").strip()
    first = caption.split(" ", 1)[0]
    if len(first) > 1 and first.isupper():  # an acronym ("TV") keeps its case
        return caption
    return caption[:1].lower() + caption[1:]


def part_text(part: Part, rules: ModifierRules) -> str:
    if not part.modifiers:
        return _clean(part.caption)
    words = ", ".join(rules.word(axis, d) for axis, d in part.modifiers)
    return rules.template.format(modifiers=words, caption=_clean(part.caption))


def compose(parts: list[Part], combine: str, rules: ModifierRules) -> str:
    """Caption of the transformed item, e.g. ``"Loud: a dog barks, then a car passes."``."""
    if combine not in ("single", "concat", "mix") or not parts:
        raise ValueError(f"cannot compose {len(parts)} part(s) with combine={combine!r}")
    joiner = rules.then if combine == "concat" else rules.while_
    text = joiner.join(part_text(p, rules) for p in parts)
    return text[:1].upper() + text[1:] + "."


def counterfactual(parts: list[Part], combine: str, rules: ModifierRules,
                   rng: np.random.Generator | None) -> str | None:
    """A caption that is false for this audio in exactly one respect, or None when there is nothing to flip.

    One modifier (chosen with ``rng``, the first without) has its direction flipped; in a mixture the level
    words say which part is louder than the other, so both are flipped together. A concatenation without
    modifiers gets its parts in reverse order (None if all parts share one caption, which reads the same).
    """
    slots = [(i, j) for i, p in enumerate(parts) for j in range(len(p.modifiers))]
    if slots:
        i, j = slots[int(rng.integers(len(slots)))] if rng is not None else slots[0]
        flipped = [Part(p.caption, list(p.modifiers)) for p in parts]
        axis = flipped[i].modifiers[j][0]
        targets = [(i, j)]
        if combine == "mix" and axis == "level":
            targets = [(a, b) for a, b in slots if parts[a].modifiers[b][0] == "level"]
        for a, b in targets:
            flipped[a].modifiers[b] = (axis, -flipped[a].modifiers[b][1])
        return compose(flipped, combine, rules)
    if combine == "concat" and len({_clean(p.caption) for p in parts}) > 1:
        return compose(parts[::-1], combine, rules)
    return None


# ---- free text (LLM-written captions) ------------------------------------------------------------------------
_FLIPS = {
    "level": {"loud": "faint", "louder": "quieter", "loudly": "faintly", "faint": "loud", "quiet": "loud",
              "quieter": "louder", "faintly": "loudly", "quietly": "loudly", "soft": "loud", "softer": "louder"},
    "pitch": {"high-pitched": "deep", "higher": "lower", "deep": "high-pitched", "deeper": "higher",
              "low-pitched": "high-pitched", "lower": "higher"},
    "speed": {"fast": "slow", "faster": "slower", "quickly": "slowly", "rapid": "slow", "slow": "fast",
              "slower": "faster", "slowly": "quickly", "sped-up": "slowed-down", "slowed-down": "sped-up"},
}


def flip_text(text: str, axes: list[str], rng: np.random.Generator | None = None) -> str | None:
    """Flip one modifier word of ``axes`` in free text (first letter case kept); None if none is present."""
    hits = []
    for axis in axes:
        for word in _FLIPS.get(axis, {}):
            hits += [(m.start(), m.end(), _FLIPS[axis][word]) for m in re.finditer(rf"\b{re.escape(word)}\b", text, re.I)]
    if not hits:
        return None
    hits.sort()
    start, end, new = hits[int(rng.integers(len(hits)))] if rng is not None else hits[0]
    if text[start].isupper():
        new = new[:1].upper() + new[1:]
    return text[:start] + new + text[end:]


_MENTIONS = {
    "level": r"\b(loud\w*|faint\w*|quiet\w*|soft\w*|gentle|gently|strong\w*|powerful\w*|intense\w*|"
             r"volume|booming|blaring|deafening|muffled|distant|whisper\w*)\b",
    "pitch": r"\b(high|higher|low|lower|deep\w*|[\w-]*pitch\w*|shrill|bass|register|treble)\b",
    "speed": r"\b(fast\w*|slow\w*|quick\w*|rapid\w*|[\w-]*pace\w*|leisurely|hurried\w*|tempo|succession)\b",
    "duration": r"\b(short\w*|brief\w*|moment\w*|long\w*|sustained|lengthy|prolonged|seconds?|minutes?|"
                r"endless\w*|continu\w*|throughout)\b",
}


def mentions(text: str, axis: str) -> bool:
    """Whether ``text`` already says something about ``axis`` (level, pitch, speed or duration; then an op on
    that axis could contradict it)."""
    return re.search(_MENTIONS[axis], text, re.I) is not None


def free_ops(text: str) -> set[str]:
    """Ops (keys of :data:`OP_AXES`) that change no axis ``text`` already talks about."""
    return {op for op, axes in OP_AXES.items() if not any(mentions(text, axis) for axis in axes)}
