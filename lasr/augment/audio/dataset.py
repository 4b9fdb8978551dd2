"""Training dataset with on-the-fly AudioSetMix transforms, truthful modifier captions, LLM-mix plans and
counterfactual hard negatives; its collate function; and the DataModule that takes them as an ``augment`` block.

Per training item (rng seeded from (seed, epoch, index), so every draw is reproducible in any worker):

1. With probability ``p_llm`` a clip that has LLM plans (``modifiers`` rows of ``llm_table``) is served
   as one of them: its clips transformed/mixed exactly as the row says, with the LLM caption.
2. Otherwise the item is a concatenation of 2-5 clips (``p_concat``), a mixture of two clips (``p_mix``) or a
   single clip; each part gets gain / pitch / speed / crop ops, each firing independently with its own
   probability, and a template caption naming only the modifiers the applied ops justify.

A transformed item gets its own ``audio_key`` (so it is a positive only for its own caption) and lists its
``source_keys``; with ``hard_negatives`` it carries a counterfactual caption (or None).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from lasr.augment.audio import transforms as T
from lasr.augment.audio.llm_mix import LLMPlanTable, Plan
from lasr.augment.audio.modifiers import (OP_AXES, ModifierRules, Part, compose, counterfactual, flip_text,
                                          free_ops, mentions, net_semitones)
from lasr.data.audio import pad_or_crop
from lasr.data.captions import CaptionPolicy
from lasr.data.datamodule import AudioTextDataModule
from lasr.data.datasets import CaptionPairDataset, clip_key, collate_pairs
from lasr.data.manifest import ClipRecord
from lasr.errors import AudioError

log = logging.getLogger(__name__)

TRANSFORMS = ("gain", "pitch", "speed", "crop", "concat", "mix")


@dataclass
class AudioAugmentConfig:
    """The ``augment`` block of the DataModule. Units: dB, semitones, speed factor, fraction of a clip.

    Args:
        transforms: which transforms may fire (subset of gain, pitch, speed, crop, concat, mix).
        p_gain / p_pitch / p_speed / p_crop: per-part probability of each op (AudioSetMix: 0.3 each).
        p_concat / p_mix: probability that an item is a concatenation / (else) a two-clip mixture.
        gain_db: |gain| range, random sign (clamped to the clip's headroom; the applied value is captioned).
        pitch_semitones: |shift| range, random sign (AudioSetMix: up to half an octave = 6 semitones).
        speed: speed-up factor range; a slow-down uses the inverse with probability 0.5.
        crop_fraction: fraction of the clip kept by a crop.
        concat_clips: number of clips in a concatenation (inclusive range).
        mix_ratio_db: energy ratio of clip 1 to clip 2 in a mixture, uniform (Wu et al.: +-5 dB).
        max_peak: no output waveform peaks above this.
        min_part_seconds: parts shorter than this are not cropped/concatenated further.
        skip_mentioned: do not apply an op to a part whose caption already talks about an axis the op changes
            (a "loud siren" made 10 dB quieter, a "high whistle" slowed down, would make the caption lie); in a
            mixture whose captions talk about loudness both clips keep their own levels.
        active_db: frames within this many dB of a part's loudest frame are its sounds: a crop (and the
            trimming of concatenated or slowed-down parts) keeps all of them, and level words compare the RMS
            of these frames.
        hard_negatives: add a counterfactual caption per transformed item (``hard_negative``).
        llm_table: caption table with ``modifiers`` (and, with ``llm_kinds``, ``mix``) rows (optional).
        llm_kinds: row kinds of ``llm_table`` served in place of training items (default ``modifiers``; a
            ``mix`` here replaces items: AISTAT's LLM mix adds pairs instead, ``data.added`` with
            :class:`lasr.augment.audio.llm_mix.LLMMixPairs`).
        llm_table_optional: a missing ``llm_table`` file means template-only (logged) instead of an error.
        p_llm: probability of serving one of a clip's LLM plans when it has any.
        rules: when an op earns a modifier word, and the words/templates.
    """

    transforms: list[str] = field(default_factory=lambda: list(TRANSFORMS))
    p_gain: float = 0.3
    p_pitch: float = 0.3
    p_speed: float = 0.3
    p_crop: float = 0.3
    p_concat: float = 0.3
    p_mix: float = 0.3
    gain_db: tuple[float, float] = (3.0, 10.0)
    pitch_semitones: tuple[float, float] = (1.0, 6.0)
    speed: tuple[float, float] = (1.15, 1.5)
    crop_fraction: tuple[float, float] = (0.3, 0.7)
    concat_clips: tuple[int, int] = (2, 5)
    mix_ratio_db: tuple[float, float] = (-5.0, 5.0)
    max_peak: float = 0.99
    min_part_seconds: float = 0.5
    skip_mentioned: bool = True
    active_db: float = 30.0
    hard_negatives: bool = True
    llm_table: str | None = None
    llm_kinds: list[str] = field(default_factory=lambda: ["modifiers"])
    llm_table_optional: bool = False
    p_llm: float = 0.5
    rules: ModifierRules = field(default_factory=ModifierRules)

    def __post_init__(self):
        unknown = set(self.transforms) - set(TRANSFORMS)
        if unknown:
            raise ValueError(f"unknown transforms {sorted(unknown)}; choose from {TRANSFORMS}")
        for name in ("p_gain", "p_pitch", "p_speed", "p_crop", "p_concat", "p_mix", "p_llm"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not self.llm_kinds or set(self.llm_kinds) - {"mix", "modifiers"}:
            raise ValueError(f"llm_kinds must be a non-empty subset of ['mix', 'modifiers'], got {self.llm_kinds}")
        if not 2 <= self.concat_clips[0] <= self.concat_clips[1]:
            raise ValueError(f"concat_clips must be (lo, hi) with 2 <= lo <= hi, got {self.concat_clips}")

    @property
    def changes_audio(self) -> bool:
        """Whether any training item can differ from its plain clip (then precomputed teachers do not apply)."""
        ops = ("gain", "pitch", "speed", "crop", "concat", "mix")
        return bool(self.llm_table and self.p_llm > 0) or any(self.p(name) > 0 for name in ops)

    def p(self, name: str) -> float:
        return getattr(self, f"p_{name}") if name in self.transforms else 0.0


def _transformed_key(sources: list[str], draw: int) -> int:
    digest = hashlib.blake2b(f"aug|{'|'.join(sources)}|{draw}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def allowed_ops(caption: str, cfg: AudioAugmentConfig) -> set[str]:
    """Ops that cannot contradict ``caption`` (all of them without ``skip_mentioned``)."""
    return free_ops(caption) if cfg.skip_mentioned else set(OP_AXES)


def draw_ops(caption: str, cfg: AudioAugmentConfig, rng: np.random.Generator, level: bool = True) -> dict[str, float]:
    """Random single-part ops, each firing independently; ops changing an axis the caption mentions are left out."""
    ops: dict[str, float] = {}
    free = allowed_ops(caption, cfg)
    if rng.random() < cfg.p("crop"):
        ops["crop_fraction"] = float(rng.uniform(*cfg.crop_fraction))
    if rng.random() < cfg.p("speed") and "speed" in free:
        factor = float(rng.uniform(*cfg.speed))
        ops["speed"] = factor if rng.random() < 0.5 else 1.0 / factor
    if rng.random() < cfg.p("pitch") and "pitch_semitones" in free:
        ops["pitch_semitones"] = float(rng.uniform(*cfg.pitch_semitones) * rng.choice([-1.0, 1.0]))
    if rng.random() < cfg.p("gain") and "gain_db" in free and level:
        ops["gain_db"] = float(rng.uniform(*cfg.gain_db) * rng.choice([-1.0, 1.0]))
    return ops


def apply_ops(wave: torch.Tensor, sample_rate: int, ops: dict[str, float], cfg: AudioAugmentConfig,
              rng: np.random.Generator, max_samples: int | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Apply crop -> speed -> pitch -> gain to ``wave`` (samples,); returns the wave and the *applied* values,
    plus ``level_db``: the measured level change (active-frame RMS, dB) when a gain was applied.

    Nothing a caption names is cut: a crop keeps the whole active span (else it is skipped, as is one leaving
    less than ``min_part_seconds``); a slow-down that would push the active span past ``max_samples`` is
    skipped, and a longer result is trimmed around its active span. A gain on a silent part is skipped; a
    positive gain is clamped to the headroom below ``max_peak``.
    """
    applied: dict[str, float] = {}
    original = wave
    min_samples = int(cfg.min_part_seconds * sample_rate)
    if "crop_fraction" in ops:
        keep = int(round(wave.shape[-1] * ops["crop_fraction"]))
        cropped = T.window_keeping_active(wave, keep, sample_rate, float(rng.random()), cfg.active_db) \
            if keep >= min_samples else None
        if cropped is not None:
            wave, applied["crop_fraction"] = cropped, ops["crop_fraction"]
        else:
            log.debug("crop %.2f skipped: it would cut a sound or leave < min_part_seconds", ops["crop_fraction"])
    if "speed" in ops:
        span = T.active_span(wave, sample_rate, cfg.active_db)
        if max_samples and span and (span[1] - span[0]) / ops["speed"] > max_samples:
            log.debug("speed %.2f skipped: the slowed-down sounds would not fit", ops["speed"])
        else:
            faster, speed = T.change_speed(wave, ops["speed"])
            if max_samples and faster.shape[-1] > max_samples:
                faster = T.window_keeping_active(faster, max_samples, sample_rate, float(rng.random()),
                                                 cfg.active_db)
            if faster is not None:
                wave, applied["speed"] = faster, speed
    if "pitch_semitones" in ops:
        wave, applied["pitch_semitones"] = T.pitch_shift(wave, ops["pitch_semitones"])
    if "speed" in applied or "pitch_semitones" in applied:
        # the phase vocoder smears pulses and resampling drops content above Nyquist: put the level back, so a
        # caption's "loud"/"faint" (and the absence of a level word) stays true
        change = T.level_change_db(wave, original, sample_rate, cfg.active_db)
        wave = T.apply_gain(wave, min(-change, max(T.headroom_db(wave, cfg.max_peak), 0.0)))
    if "gain_db" in ops:
        if T.is_silent(wave):
            log.debug("gain skipped: silent part")
        else:
            gain = ops["gain_db"]
            if gain > 0:
                gain = min(gain, max(T.headroom_db(wave, cfg.max_peak), 0.0))
            wave, applied["gain_db"] = T.apply_gain(wave, gain), gain
            applied["level_db"] = T.level_change_db(wave, original, sample_rate, cfg.active_db)
    return wave, applied


def _modifiers(rules: ModifierRules, ops: dict[str, float]) -> list[tuple[str, int]]:
    """Words for what a part became: measured level change (requested gain for a plan not yet applied), net
    pitch of pitch shift and tape-style speed together, and the speed factor."""
    return rules.modifiers_for(ops.get("level_db", ops.get("gain_db", 0.0)),
                               net_semitones(ops.get("pitch_semitones", 0.0), ops.get("speed", 1.0)),
                               ops.get("speed", 1.0))


def trim_to_active(wave: torch.Tensor, sample_rate: int, active_db: float, margin_s: float = 0.05) -> torch.Tensor:
    """``wave`` cut to its active span plus ``margin_s`` on each side (a concatenated part without dead air)."""
    span = T.active_span(wave, sample_rate, active_db)
    if span is None:
        return wave
    margin = int(margin_s * sample_rate)
    return wave[max(0, span[0] - margin) : min(wave.shape[-1], span[1] + margin)]


class AugmentedPairDataset(CaptionPairDataset):
    """:class:`CaptionPairDataset` whose training items (those with an rng) are transformed on the fly.

    Items carry, besides the base fields: ``source_keys`` (int64 keys of every source clip), ``augment`` (short
    description of what was applied, "" when nothing) and, with ``config.hard_negatives``, ``hard_negative``
    (counterfactual caption or None). Evaluation items (no rng) are never transformed.
    """

    def __init__(self, records: Sequence[ClipRecord], sample_rate: int, max_seconds: float,
                 caption_policy: CaptionPolicy | None = None, min_seconds: float = 0.0, strict: bool = False,
                 max_retries: int = 10, seed: int = 0, config: AudioAugmentConfig | None = None):
        super().__init__(records, sample_rate, max_seconds, caption_policy, min_seconds, strict, max_retries, seed)
        self.config = config or AudioAugmentConfig()
        self.index_of = {r.key: i for i, r in enumerate(self.records)}
        self.captioned = [i for i, r in enumerate(self.records) if r.captions]
        self.plans = self._plan_table()

    def _plan_table(self) -> LLMPlanTable | None:
        path = self.config.llm_table
        if path and self.config.llm_table_optional and not Path(path).is_file():
            log.warning("LLM plan table %s not found: template modifier captions only", path)
            return None
        return LLMPlanTable(path, set(self.index_of), tuple(self.config.llm_kinds)) if path else None

    def _load(self, record: ClipRecord, seconds: float, rng: np.random.Generator) -> torch.Tensor:
        """Unpadded mono wave at the dataset rate (files at other rates are resampled on load)."""
        return self.audio.read(record, rng, seconds)[0]

    def _item(self, index: int, rng: np.random.Generator | None) -> dict[str, Any]:
        if rng is None:
            return super()._item(index, rng)
        clip, slot = self.pairs[index]
        record = self.records[clip]
        draw = int(rng.integers(2**62))
        plans = self.plans.plans_for(record.key) if self.plans else []
        if plans and rng.random() < self.config.p_llm:
            item = self._serve_plan(plans[int(rng.integers(len(plans)))], index, draw, rng)
            if item is not None:
                return item
        return self._serve_template(clip, slot, index, draw, rng)

    def _partners(self, clip: int, count: int, rng: np.random.Generator) -> list[tuple[ClipRecord, int]]:
        others = [i for i in self.captioned if i != clip]
        if not others or count <= 0:
            return []
        picks = rng.choice(len(others), size=min(count, len(others)), replace=False)
        chosen = [self.records[others[int(p)]] for p in picks]
        return [(record, int(rng.integers(len(record.captions)))) for record in chosen]

    def _structure(self, rng: np.random.Generator) -> tuple[str, int]:
        cfg = self.config
        if rng.random() < cfg.p("concat"):
            return "concat", int(rng.integers(cfg.concat_clips[0], cfg.concat_clips[1] + 1))
        if rng.random() < cfg.p("mix"):
            return "mix", 2
        return "single", 1

    def _load_sources(self, sources, seconds: float, rng) -> tuple[list, list[torch.Tensor]]:
        """Load every source; a partner that fails to load is dropped (the first source must load)."""
        kept, waves = [], []
        for position, (record, slot) in enumerate(sources):
            try:
                waves.append(self._load(record, seconds, rng))
                kept.append((record, slot))
            except AudioError as err:
                if position == 0:
                    raise
                log.debug("augmentation partner dropped: %s", err)
        return kept, waves

    def _serve_template(self, clip: int, slot: int, index: int, draw: int, rng: np.random.Generator) -> dict[str, Any]:
        cfg, sr, length = self.config, self.audio.sample_rate, self.audio.length
        combine, count = self._structure(rng)
        sources = [(self.records[clip], slot)] + self._partners(clip, count - 1, rng)
        sources, waves = self._load_sources(sources, self.audio.max_seconds, rng)
        combine = combine if len(sources) > 1 else "single"
        parts, edited = [], []
        captions = [self.caption_policy.caption(record, part_slot, rng) for record, part_slot in sources]
        natural_levels = combine == "mix" and cfg.skip_mentioned and any(mentions(c, "level") for c in captions)
        for caption, wave in zip(captions, waves):
            wave, applied = apply_ops(wave, sr, draw_ops(caption, cfg, rng, level=combine != "mix"), cfg, rng,
                                      max_samples=length)
            if combine == "concat":  # parts follow each other without dead air, so all of them fit
                wave = trim_to_active(wave, sr, cfg.active_db)
            parts.append(Part(caption, _modifiers(cfg.rules, applied)))
            edited.append(wave)
        if combine == "concat":  # the parts that fit in the training window, in order (each keeps all its sounds)
            total, keep = 0, 0
            while keep < len(edited) and total + edited[keep].shape[-1] <= length:
                total, keep = total + edited[keep].shape[-1], keep + 1
            keep = max(keep, 1)
            sources, parts, edited = sources[:keep], parts[:keep], edited[:keep]
            combine = combine if keep > 1 else "single"
        if combine == "mix":
            ratio = None if natural_levels else float(rng.uniform(*cfg.mix_ratio_db))
            try:
                wave, _ = T.mix_pair(edited[0], edited[1], ratio, float(rng.random()), cfg.max_peak)
                if ratio is not None:
                    self._relative_levels(parts, edited, ratio)
            except AudioError as err:  # a silent partner: serve the first clip alone
                log.debug("mixture skipped (%s): %s", sources[1][0].audio_path, err)
                combine, sources, parts, wave = "single", sources[:1], parts[:1], edited[0]
        else:
            wave = T.concatenate(edited) if combine == "concat" else edited[0]
        if combine == "single" and not parts[0].modifiers:  # nothing to say: the clip keeps its own identity
            return self._assemble(wave, parts[0].caption, sources, index, None, None)
        hard = counterfactual(parts, combine, cfg.rules, rng) if cfg.hard_negatives else None
        words = (",".join(f"{axis}{'+' if d > 0 else '-'}" for axis, d in p.modifiers) for p in parts)
        describe = combine + ":" + ";".join(words)
        return self._assemble(wave, compose(parts, combine, cfg.rules), sources, index, hard, draw, describe)

    def _relative_levels(self, parts: list[Part], edited: list[torch.Tensor], ratio_db: float) -> None:
        """Level words of a two-part mixture, from the parts' levels after energy matching: the louder part is
        *loud*, the other *faint*, when they differ audibly (active-frame RMS, so a short loud event in a mostly
        silent clip is not called faint next to a steady hum)."""
        cfg, sr = self.config, self.audio.sample_rate
        first = T.active_rms(edited[0], sr, cfg.active_db)
        second = T.active_rms(edited[1], sr, cfg.active_db) * T.mix_scale(edited[0], edited[1], ratio_db)
        if first <= 0 or second <= 0:
            return
        difference = 20.0 * np.log10(first / second)
        if abs(difference) < cfg.rules.min_gain_db:
            return
        sign = 1 if difference > 0 else -1
        parts[0].modifiers.insert(0, ("level", sign))
        parts[1].modifiers.insert(0, ("level", -sign))

    def _serve_plan(self, plan: Plan, index: int, draw: int, rng: np.random.Generator) -> dict[str, Any] | None:
        """An LLM plan, or None when the audio cannot become what its caption says: an op that cannot be applied
        as planned, an op on an axis the source caption mentions, a gain inside a mixture (energy matching
        undoes it), or mixture levels that do not come out as the plan's ratio says."""
        cfg, sr, length = self.config, self.audio.sample_rate, self.audio.length
        sources = [(self.records[self.index_of[c.clip_key]], c.slot) for c in plan.clips]
        if plan.combine == "mix" and (len(sources) != 2 or any("gain_db" in c.ops for c in plan.clips)):
            log.debug("LLM plan skipped: a mixture plan with %d clips or per-clip gains", len(sources))
            return None
        for (record, slot), spec in zip(sources, plan.clips):
            if set(spec.ops) - {"level_db"} - allowed_ops(record.captions[slot], cfg):
                log.debug("LLM plan skipped: ops %s contradict the caption %r", spec.ops, record.captions[slot])
                return None
        kept, waves = self._load_sources(sources, self.audio.max_seconds, rng)
        if len(kept) != len(sources):
            return None
        edited, axes = [], set()
        for spec, wave in zip(plan.clips, waves):
            wave, applied = apply_ops(wave, sr, spec.ops, cfg, rng, max_samples=length)
            if _modifiers(cfg.rules, applied) != _modifiers(cfg.rules, spec.ops):
                log.debug("LLM plan skipped: ops %s applied as %s", spec.ops, applied)
                return None
            axes |= {axis for axis, _ in _modifiers(cfg.rules, applied)}
            edited.append(trim_to_active(wave, sr, cfg.active_db) if plan.combine == "concat" else wave)
        if plan.combine == "concat" and sum(w.shape[-1] for w in edited) > length:
            return None
        if plan.combine == "mix":
            ratio = plan.snr_db if plan.snr_db is not None else float(rng.uniform(*cfg.mix_ratio_db))
            ratio = None if plan.natural_levels else ratio
            offset = plan.offset_fraction if plan.offset_fraction is not None else float(rng.random())
            parts = [Part(""), Part("")]
            if ratio is not None:
                self._relative_levels(parts, edited, ratio)
                said = [m for m in cfg.rules.modifiers_for(ratio) if m[0] == "level"]
                if plan.kind == "modifiers" and parts[0].modifiers != said:
                    log.debug("LLM plan skipped: ratio %.1f dB gives level words %s", ratio, parts[0].modifiers)
                    return None
            axes |= {"level"} if parts[0].modifiers else set()
            try:
                wave, _ = T.mix_pair(edited[0], edited[1], ratio, offset, cfg.max_peak)
            except AudioError:
                return None
        else:
            wave = T.concatenate(edited) if plan.combine == "concat" else edited[0]
        hard = flip_text(plan.text, sorted(axes), rng) if cfg.hard_negatives else None
        return self._assemble(wave, plan.text, sources, index, hard, draw, f"llm-{plan.kind}:{plan.combine}")

    def _assemble(self, wave: torch.Tensor, caption: str, sources, index: int, hard: str | None,
                  draw: int | None, describe: str = "") -> dict[str, Any]:
        """Item dict; ``draw`` None keeps the first clip's key (an untransformed item)."""
        record, slot = sources[0]
        wave = T.limit_peak(wave, self.config.max_peak)
        duration = min(wave.shape[-1], self.audio.length) / self.audio.sample_rate
        key = clip_key(record) if draw is None else _transformed_key([r.key for r, _ in sources], draw)
        item = {
            "audio": pad_or_crop(wave, self.audio.length), "duration": duration, "caption": caption,
            "audio_id": record.id, "audio_key": key, "caption_id": f"{record.id}#{slot}" + ("+aug" if describe else ""),
            "dataset": record.dataset, "index": index, "source_keys": [clip_key(r) for r, _ in sources],
            "augment": describe,
            "caption_augmented": describe.startswith("llm-") or (len(sources) == 1 and self.caption_policy.last_augmented),
        }
        if self.config.hard_negatives:
            item["hard_negative"] = hard
        return item


def collate_augmented(items: list[dict[str, Any]]) -> dict[str, Any]:
    """:func:`collate_pairs` plus ``source_keys`` (list of int lists), ``augment`` (list of str) and, when the
    items carry them, ``hard_negatives`` (list of str or None, aligned with ``caption``)."""
    batch = collate_pairs(items)
    batch["source_keys"] = [i.get("source_keys", [i["audio_key"]]) for i in items]
    batch["augment"] = [i.get("augment", "") for i in items]
    if any("hard_negative" in i for i in items):
        batch["hard_negatives"] = [i.get("hard_negative") for i in items]
    return batch


class AugmentedAudioTextDataModule(AudioTextDataModule):
    """:class:`AudioTextDataModule` whose training set is an :class:`AugmentedPairDataset`.

    Args:
        augment: the augmentation block (None = the defaults of :class:`AudioAugmentConfig`).
        **kwargs: every argument of :class:`AudioTextDataModule`.
    """

    def __init__(self, augment: AudioAugmentConfig | None = None, **kwargs):
        super().__init__(**kwargs)
        self.augment = augment or AudioAugmentConfig()

    def build_train_dataset(self, records: list[ClipRecord]) -> AugmentedPairDataset:
        return AugmentedPairDataset(records, self.sample_rate, self.train_seconds, self.caption_policy,
                                    self.min_seconds, self.strict, self.max_retries, self.seed, self.augment)

    train_collate = staticmethod(collate_augmented)
