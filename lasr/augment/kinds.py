"""Request builders, one per augmentation kind. A kind is a list of stages; each stage builds its requests from
the inputs and from the accepted rows of the previous stage in the store (back-translation and class prompts
have two LLM hops).

Kinds: ``paraphrase`` (LASS), ``rewrite`` (ReCLAP acoustic rewrites), ``backtranslate`` (pivot languages, two
hops), ``mix`` (DCASE LLM mix: caption of two overlaid clips), ``class-prompts`` (ReCLAP prompt augmentation:
descriptions per label, then captions in diverse scenes), ``modifiers`` (AudioSetMix: caption of a clip after
gain / pitch / speed / crop / concatenation / mixing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from lasr.augment.filters import normalise
from lasr.augment.prompts import Template
from lasr.augment.requests import LLMRequest, Sampling, make_request
from lasr.augment.store import Store
from lasr.data.manifest import ClipRecord

KINDS = ("paraphrase", "rewrite", "backtranslate", "mix", "class-prompts", "modifiers")


@dataclass(frozen=True)
class ModifierConfig:
    """AudioSetMix-style transforms. Each single-clip op fires with probability ``p_op`` (paper: 0.3); ranges
    beyond gain and pitch are not given by the paper and are ours. Units: dB, semitones, speed factor, fraction."""

    p_op: float = 0.3
    max_clips: int = 3
    p_concat: float = 0.5                    # else the clips are mixed
    gain_db: tuple[float, float] = (3.0, 10.0)          # |gain|, random sign
    pitch_semitones: tuple[float, float] = (1.0, 6.0)   # |shift|, random sign (paper: up to half an octave)
    speed: tuple[float, float] = (1.15, 1.5)            # factor or its inverse
    crop_fraction: tuple[float, float] = (0.3, 0.7)     # fraction of the clip kept
    mix_snr_db: tuple[float, float] = (-5.0, 5.0)       # energy ratio of clip 1 to the others (Wu et al.)


@dataclass
class KindConfig:
    """Everything a kind needs besides the inputs. ``samples`` = outputs per source (k rewrites / paraphrases)."""

    model: str
    sampling: Sampling = field(default_factory=Sampling)
    samples: int = 2
    seed: int = 0
    limit: int | None = None                 # source captions (or labels) used, in manifest order
    slots: int | None = None                 # caption slots per clip (None: all)
    languages: tuple[str, ...] = ("German", "French")
    pairs: int = 100                         # mix pairs / modifier examples
    descriptions: int = 5                    # class-prompts: descriptions per label (ReCLAP: 5)
    captions_per_description: int = 10       # class-prompts: captions per description (ReCLAP: 10 -> 50 per label)
    modifiers: ModifierConfig = field(default_factory=ModifierConfig)
    templates: dict[str, str] = field(default_factory=dict)   # template overrides by id

    def template(self, name: str) -> Template:
        return Template.load(self.templates.get(name, name))


Stage = tuple[str, Callable[[Store], list[LLMRequest]]]


def _current(rows, config: KindConfig, template: str) -> list:
    """First-stage rows written with this run's model, template version and sampling (older settings are
    left out, so a second hop never builds on an outdated first hop)."""
    import json

    tag, sampling = config.template(template).tag, json.dumps(config.sampling.as_dict())
    return [row for row in rows if row.model == config.model and row.template == tag and row.sampling == sampling]


def caption_sources(records: Sequence[ClipRecord], config: KindConfig) -> list[tuple[ClipRecord, int]]:
    """``(record, slot)`` pairs in manifest order, at most ``config.slots`` per clip and ``config.limit`` total."""
    out = []
    for record in records:
        for slot in range(min(len(record.captions), config.slots or len(record.captions))):
            out.append((record, slot))
    return out[:config.limit] if config.limit else out


def _per_caption(kind: str, template: str, records, config: KindConfig) -> list[LLMRequest]:
    tpl = config.template(template)
    return [make_request(kind=kind, stage=kind, model=config.model, template=tpl,
                         fields={"source": r.captions[slot]}, sampling=config.sampling, sample_index=i,
                         meta={"clip_key": r.key, "slot": slot})
            for r, slot in caption_sources(records, config) for i in range(config.samples)]


def _backtranslate(records, config: KindConfig) -> list[Stage]:
    def to_pivot(_store: Store) -> list[LLMRequest]:
        tpl = config.template("translate_to_pivot")
        return [make_request(kind="backtranslate", stage="to_pivot", model=config.model, template=tpl,
                             fields={"source": r.captions[slot], "language": lang}, sampling=config.sampling,
                             sample_index=0, english=False,
                             meta={"clip_key": r.key, "slot": slot, "language": lang, "original": r.captions[slot]})
                for r, slot in caption_sources(records, config) for lang in config.languages]

    def from_pivot(store: Store) -> list[LLMRequest]:
        tpl = config.template("translate_from_pivot")
        wanted = {(r.key, slot) for r, slot in caption_sources(records, config)}
        return [make_request(kind="backtranslate", stage="from_pivot", model=config.model, template=tpl,
                             fields={"source": row.text, "language": row.meta["language"]},
                             sampling=config.sampling, sample_index=0, meta={**row.meta, "pivot": row.text})
                for row in _current(store.rows("backtranslate", "to_pivot"), config, "translate_to_pivot")
                if (row.meta["clip_key"], row.meta["slot"]) in wanted]

    return [("to_pivot", to_pivot), ("from_pivot", from_pivot)]


def choose_mix_pairs(records: Sequence[ClipRecord], count: int, seed: int,
                     snr_db: tuple[float, float] = (-5.0, 5.0)) -> list[dict[str, Any]]:
    """``count`` distinct unordered clip pairs whose chosen captions differ, with mixing parameters:
    ``snr_db`` energy ratio of clip a to clip b in dB, ``offset_fraction`` where the shorter clip starts inside
    the longer one (fraction of the free room), ``natural_levels`` when a caption states a loudness (the clips
    are then mixed at their own levels, so it stays true). Deterministic for ``seed``."""
    from lasr.augment.audio.modifiers import mentions

    captioned = [r for r in records if r.captions]
    rng = np.random.default_rng(seed)
    pairs, seen = [], set()
    for _ in range(count * 20):
        if len(pairs) == count or len(captioned) < 2:
            break
        i, j = rng.choice(len(captioned), size=2, replace=False)
        a, b = captioned[i], captioned[j]
        slot_a, slot_b = int(rng.integers(len(a.captions))), int(rng.integers(len(b.captions)))
        key = tuple(sorted((a.key, b.key)))
        if key in seen or normalise(a.captions[slot_a]) == normalise(b.captions[slot_b]):
            continue
        seen.add(key)
        natural = any(mentions(text, "level") for text in (a.captions[slot_a], b.captions[slot_b]))
        pairs.append({"pair_index": len(pairs), "clip_key": a.key, "slot": slot_a, "clip_key_b": b.key,
                      "slot_b": slot_b, "caption": a.captions[slot_a], "caption_b": b.captions[slot_b],
                      "mix": {"snr_db": round(float(rng.uniform(*snr_db)), 3),
                              "offset_fraction": round(float(rng.uniform()), 4), "natural_levels": natural}})
    return pairs


def _mix(records, config: KindConfig) -> list[LLMRequest]:
    tpl = config.template("mix")
    out = []
    for pair in choose_mix_pairs(records, config.pairs, config.seed, config.modifiers.mix_snr_db):
        meta = {k: v for k, v in pair.items() if k not in ("caption", "caption_b")}
        for i in range(config.samples):
            out.append(make_request(kind="mix", stage="mix", model=config.model, template=tpl,
                                    fields={"source": pair["caption"], "other": pair["caption_b"]},
                                    sampling=config.sampling, sample_index=i, meta=meta))
    return out


def _class_prompts(labels: Sequence[str], config: KindConfig) -> list[Stage]:
    labels = list(labels)[:config.limit] if config.limit else list(labels)

    def descriptions(_store: Store) -> list[LLMRequest]:
        tpl = config.template("class_descriptions")
        return [make_request(kind="class-prompts", stage="descriptions", model=config.model, template=tpl,
                             fields={"source": label.replace("_", " "), "label_kind": "recording"},
                             sampling=config.sampling, sample_index=i, meta={"label": label})
                for label in labels for i in range(config.descriptions)]

    def captions(store: Store) -> list[LLMRequest]:
        tpl = config.template("class_captions")
        wanted = set(labels)
        return [make_request(kind="class-prompts", stage="captions", model=config.model, template=tpl,
                             fields={"source": row.meta["label"].replace("_", " "), "description": row.text},
                             sampling=config.sampling, sample_index=i,
                             meta={"label": row.meta["label"], "description": row.text})
                for row in _current(store.rows("class-prompts", "descriptions"), config, "class_descriptions")
                if row.meta["label"] in wanted
                for i in range(config.captions_per_description)]

    return [("descriptions", descriptions), ("captions", captions)]


def _clip_ops(rng: np.random.Generator, cfg: ModifierConfig, caption: str,
              level: bool = True) -> tuple[dict[str, float], list[str]]:
    """Random single-clip ops and the words that describe what the clip becomes, from the same facts the
    serving dataset checks (:func:`lasr.augment.audio.modifiers.net_semitones`: a tape-style speed change moves
    the pitch too). Ops on an axis the caption already talks about are not drawn; a crop keeps every sound
    (the dataset crops silence only), so it earns no word; in a mixture (``level`` False) no gain is drawn."""
    from lasr.augment.audio.modifiers import ModifierRules, free_ops, net_semitones

    rules, free = ModifierRules(), free_ops(caption)
    ops: dict[str, float] = {}
    if rng.uniform() < cfg.p_op and level and "gain_db" in free:
        ops["gain_db"] = round(float(rng.uniform(*cfg.gain_db) * rng.choice([-1, 1])), 2)
    if rng.uniform() < cfg.p_op and "pitch_semitones" in free:
        ops["pitch_semitones"] = round(float(rng.uniform(*cfg.pitch_semitones) * rng.choice([-1, 1])), 2)
    if rng.uniform() < cfg.p_op and "speed" in free:
        factor = float(rng.uniform(*cfg.speed))
        ops["speed"] = round(factor if rng.uniform() < 0.5 else 1.0 / factor, 3)
    if rng.uniform() < cfg.p_op:
        ops["crop_fraction"] = round(float(rng.uniform(*cfg.crop_fraction)), 3)
    facts = rules.modifiers_for(ops.get("gain_db", 0.0),
                                net_semitones(ops.get("pitch_semitones", 0.0), ops.get("speed", 1.0)),
                                ops.get("speed", 1.0))
    names = {"level": ("quieter", "louder"), "pitch": ("deeper pitch", "higher pitch"), "speed": ("slower", "faster")}
    return ops, [names[axis][direction > 0] for axis, direction in facts]


def choose_modifier_examples(records: Sequence[ClipRecord], count: int, seed: int,
                             cfg: ModifierConfig = ModifierConfig()) -> list[dict[str, Any]]:
    """``count`` transformed examples: 1..max_clips clips (two in a mixture), per-clip ops, and how they combine
    (``concat`` or ``mix`` with ``snr_db``). ``description`` is the LLM input, e.g.
    ``[1] a dog barks (louder) ; then [2] ...``; in a mixture the level words come from ``snr_db`` (energy
    matching sets the relative level, so per-clip gains would be undone)."""
    from lasr.augment.audio.modifiers import ModifierRules, mentions

    captioned = [r for r in records if r.captions]
    rng = np.random.default_rng(seed)
    examples = []
    for index in range(count if captioned else 0):
        n = int(rng.integers(1, min(cfg.max_clips, len(captioned)) + 1))
        combine = "concat" if rng.uniform() < cfg.p_concat else "mix"
        n = min(n, 2) if combine == "mix" else n
        picks = [captioned[int(p)] for p in rng.choice(len(captioned), size=n, replace=False)]
        slots = [int(rng.integers(len(r.captions))) for r in picks]
        texts = [r.captions[slot] for r, slot in zip(picks, slots)]
        mixed = n > 1 and combine == "mix"
        natural = mixed and any(mentions(t, "level") for t in texts)  # keep the levels the captions state
        snr = round(float(rng.uniform(*cfg.mix_snr_db)), 3) if mixed and not natural else None
        level_words = [[], []]
        if snr is not None and abs(snr) >= ModifierRules().min_gain_db:
            level_words = [["louder" if snr > 0 else "quieter"], ["quieter" if snr > 0 else "louder"]]
        clips, parts = [], []
        for position, (record, slot, text) in enumerate(zip(picks, slots, texts), 1):
            ops, words = _clip_ops(rng, cfg, text, level=not mixed)
            words = (level_words[position - 1] if mixed else []) + words
            clips.append({"clip_key": record.key, "slot": slot, "ops": ops})
            line = f"[{position}] {text.rstrip('.')}" + (f" ({', '.join(words)})" if words else "")
            joiner = "" if position == 1 else ("then " if combine == "concat" else "while ")
            parts.append(joiner + line)
        example = {"example_index": index, "clip_key": clips[0]["clip_key"], "slot": clips[0]["slot"],
                   "clips": clips, "combine": combine if n > 1 else "single", "description": " ; ".join(parts)}
        if mixed:
            example["mix"] = {"snr_db": snr, "natural_levels": natural}
        examples.append(example)
    return examples


def _modifiers(records, config: KindConfig) -> list[LLMRequest]:
    tpl = config.template("modifiers")
    return [make_request(kind="modifiers", stage="modifiers", model=config.model, template=tpl,
                         fields={"source": example["description"]}, sampling=config.sampling, sample_index=i,
                         meta=example)
            for example in choose_modifier_examples(records, config.pairs, config.seed, config.modifiers)
            for i in range(config.samples)]


def plan(kind: str, config: KindConfig, records: Sequence[ClipRecord] = (),
         labels: Sequence[str] = ()) -> list[Stage]:
    """The stages of ``kind``. All templates are rendered for the first stage here, so a template with a missing
    placeholder fails before any request is sent."""
    if kind == "paraphrase":
        return [("paraphrase", lambda _s: _per_caption("paraphrase", "paraphrase", records, config))]
    if kind == "rewrite":
        return [("rewrite", lambda _s: _per_caption("rewrite", "rewrite", records, config))]
    if kind == "backtranslate":
        for lang in config.languages:  # both hops' templates must know the language before anything is sent
            config.template("translate_to_pivot").check({"source": "", "language": lang})
            config.template("translate_from_pivot").check({"source": "", "language": lang})
        return _backtranslate(records, config)
    if kind == "mix":
        return [("mix", lambda _s: _mix(records, config))]
    if kind == "modifiers":
        return [("modifiers", lambda _s: _modifiers(records, config))]
    if kind == "class-prompts":
        config.template("class_captions").check({"source": "", "description": ""})
        return _class_prompts(labels, config)
    raise ValueError(f"unknown kind {kind!r}; choose from {KINDS}")
