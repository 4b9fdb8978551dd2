"""Caption policies: decide which text is served for a clip's caption slot.

The DataModule never reads ``record.captions`` directly for training; it asks its policy. The identity policy
serves the human caption; later policies (LLM paraphrases, back-translations, ...) plug in here without touching
the DataModule.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Callable, Sequence

import numpy as np

from lasr.data.caption_table import normalise, read_table
from lasr.data.manifest import ClipRecord

log = logging.getLogger(__name__)
OTHER_AUDIO_KINDS = ("mix", "modifiers", "class-prompts", "class-description")  # never variants of a clip caption


class CaptionPolicy:
    """Identity policy: the original caption in slot ``slot`` of the clip. ``last_augmented`` says whether the
    last caption served was an LLM variant (the dataset puts it in the item as ``caption_augmented``)."""

    last_augmented = False

    def caption(self, record: ClipRecord, slot: int, rng: np.random.Generator | None) -> str:
        """Return the caption text to train on for ``record.captions[slot]``.

        Args:
            record: the clip.
            slot: index into ``record.captions``.
            rng: per-item random generator (None in evaluation: policies must then be deterministic).
        """
        return record.captions[slot]


class AugmentedCaptionPolicy(CaptionPolicy):
    """Serve the original caption or one of its LLM variants from a caption table (``lasr augment export``).

    ReCLAP's scheme by default: among the variants of the enabled ``kinds`` for this caption, pick one
    uniformly; serve the original with probability ``p_original`` (ReCLAP: 0.4) and the variant otherwise.
    With ``kind_weights`` (e.g. ``{paraphrase: 1, rewrite: 2}``) the kind is drawn first by those weights among
    the kinds this caption has, then a variant uniformly within it. Captions without variants are served as is.
    Evaluation (``rng is None``) always gets the original, so validation/test queries are never augmented.

    Variants are matched by ``(clip_key, slot)``; with ``match="text"`` (or when the key is absent) by the
    normalised source caption text, which survives re-generated manifests.

    Args:
        table: JSONL(.gz) or CSV caption table.
        p_original: probability of serving the original caption when variants exist.
        kinds: variant kinds to serve (table rows of other kinds are ignored).
        kind_weights: optional per-kind weights (see above).
        match: ``slot`` (key first, text fallback) or ``text``.
        log_every: log the fraction of LLM captions served every this many training draws (per process;
            0 disables).
    """

    def __init__(self, table: str, p_original: float = 0.4,
                 kinds: tuple[str, ...] | list[str] = ("paraphrase", "rewrite", "backtranslate"),
                 kind_weights: dict[str, float] | None = None, match: str = "slot", log_every: int = 2000):
        if not 0.0 <= p_original <= 1.0:
            raise ValueError(f"p_original must be in [0, 1], got {p_original}")
        if match not in ("slot", "text"):
            raise ValueError(f"match must be 'slot' or 'text', got {match!r}")
        other_audio = sorted(set(kinds) & set(OTHER_AUDIO_KINDS))
        if other_audio:
            raise ValueError(f"caption kinds {other_audio} describe other audio (a mixture or a transformed clip), "
                             "not the plain clip: serve them through lasr.augment.audio (augment.llm_table)")
        self.table, self.p_original, self.kinds = str(table), p_original, tuple(kinds)
        self.kind_weights = dict(kind_weights) if kind_weights else None
        self.match = match
        self._normalise = normalise
        self.by_key: dict[tuple[str, int], dict[str, list[str]]] = {}
        self.by_text: dict[str, dict[str, list[str]]] = {}
        for row in read_table(table):
            if row["kind"] not in self.kinds or not row.get("text"):
                continue
            for index, key in ((self.by_key, (row["clip_key"], int(row["slot"]))),
                               (self.by_text, normalise(row["source"]))):
                index.setdefault(key, {}).setdefault(row["kind"], []).append(row["text"])
        for index in (self.by_key, self.by_text):  # table order must not change the draws
            for kinds in index.values():
                for kind in kinds:
                    kinds[kind] = sorted(set(kinds[kind]))
        self.served_original = 0
        self.served_augmented = 0
        self.log_every = log_every
        log.info("caption table %s: LLM variants for %d captions (kinds %s, p_original %.2f)",
                 table, len(self.by_key), list(self.kinds), p_original)

    def variants(self, record: ClipRecord, slot: int) -> dict[str, list[str]]:
        """``kind -> texts`` available for ``record.captions[slot]``."""
        found = self.by_key.get((record.key, slot)) if self.match == "slot" else None
        if found is None:
            found = self.by_text.get(self._normalise(record.captions[slot]), {})
        return found

    def caption(self, record: ClipRecord, slot: int, rng: np.random.Generator | None) -> str:
        text = self._draw(record, slot, rng)
        total = self.served_original + self.served_augmented
        if rng is not None and self.log_every and total % self.log_every == 0:
            log.info("LLM captions served: %.1f%% of %d", 100 * self.augmented_fraction, total)
        return text

    def _draw(self, record: ClipRecord, slot: int, rng: np.random.Generator | None) -> str:
        original = record.captions[slot]
        self.last_augmented = False
        found = self.variants(record, slot) if rng is not None else {}
        if not found or rng.random() < self.p_original:
            self.served_original += rng is not None
            return original
        if self.kind_weights:
            kinds = [k for k in found if self.kind_weights.get(k, 0.0) > 0]
            if not kinds:
                self.served_original += 1
                return original
            weights = np.array([self.kind_weights[k] for k in kinds], dtype=float)
            texts = found[kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]]
        else:
            texts = [text for kind_texts in found.values() for text in kind_texts]
        self.served_augmented += 1
        self.last_augmented = True
        return texts[int(rng.integers(len(texts)))]

    @property
    def augmented_fraction(self) -> float:
        """Fraction of training captions served by this process that were LLM variants."""
        total = self.served_original + self.served_augmented
        return self.served_augmented / total if total else 0.0


# ---- which strings the student can see (teachers embed them; distillation checks them) ------------------
def _flatten(found: Any) -> list[str]:
    """Variant texts from a list of strings, a string, or a ``kind -> [texts]`` dict."""
    if isinstance(found, str):
        return [found]
    if isinstance(found, dict):
        return [text for texts in found.values() for text in texts]
    return list(found or ())


def policy_variants(policy: Any, record: ClipRecord) -> list[str]:
    """Augmented captions a policy can serve for ``record``: ``policy.variants(record)``, or per caption slot
    ``policy.variants(record, slot)`` (e.g. :class:`lasr.data.captions.AugmentedCaptionPolicy`); [] without one."""
    variants: Callable | None = getattr(policy, "variants", None)
    if variants is None:
        return []
    if len(inspect.signature(variants).parameters) >= 2:
        return [text for slot in range(len(record.captions)) for text in _flatten(variants(record, slot))]
    return _flatten(variants(record))


def student_caption_texts(records: Sequence[ClipRecord], policy: Any = None,
                          extra: dict[str, list[str]] | None = None) -> list[str]:
    """Unique caption strings (first-seen order): originals, the policy's variants, and ``extra[key]``."""
    texts: dict[str, None] = {}
    for record in records:
        texts.update(dict.fromkeys(record.captions))
        texts.update(dict.fromkeys(policy_variants(policy, record)))
        if extra:
            texts.update(dict.fromkeys(extra.get(record.key, ())))
    return list(texts)
