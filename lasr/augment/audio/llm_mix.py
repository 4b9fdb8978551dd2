"""The ``mix`` and ``modifiers`` rows of an exported caption table (``lasr augment export``) as serving plans.

* ``mix`` row: clips ``clip_key``/``slot`` and ``extra.clip_key_b``/``slot_b``, ``extra.mix`` =
  ``{snr_db, offset_fraction}``; ``text`` is the LLM's composite caption of the overlay.
* ``modifiers`` row: ``extra.clips`` = ``[{clip_key, slot, ops}]`` with ops ``gain_db``, ``pitch_semitones``,
  ``speed``, ``crop_fraction``; ``extra.combine`` in ``single|concat|mix``; ``extra.mix.snr_db`` for mixes.

Plans are indexed by their first clip, so a training item for clip A can be served as one of A's plans.
Plans naming a clip that is not in the training manifests are dropped (counted in ``dropped``).

:class:`LLMMixPairs` serves ``mix`` rows as AISTAT does: N pairs *added* to the training set with their own
weight (``data.added``), instead of replacing training items.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lasr.augment.audio import transforms as T
from lasr.data.added import AddedTrainingSet
from lasr.data.audio import pad_or_crop
from lasr.data.datasets import _AudioSource, _SkippingDataset, clip_key
from lasr.data.manifest import ClipRecord
from lasr.errors import AudioError, DataError

log = logging.getLogger(__name__)

OPS = ("gain_db", "pitch_semitones", "speed", "crop_fraction")


@dataclass
class ClipOps:
    """One source clip of a plan and the ops to apply to it (missing op = not applied)."""

    clip_key: str
    slot: int
    ops: dict[str, float] = field(default_factory=dict)


@dataclass
class Plan:
    """An LLM-captioned transformed example: clips in order, how they combine, and the caption to serve."""

    kind: str                        # "mix" | "modifiers"
    clips: list[ClipOps]
    combine: str                     # "single" | "concat" | "mix"
    text: str
    snr_db: float | None = None      # energy ratio of clip 1 to clip 2 (mix)
    offset_fraction: float | None = None
    natural_levels: bool = False     # mix the clips at their own levels (the captions state them)


def _plan(row: dict, number: int, path: str) -> Plan | None:
    extra = row.get("extra") or {}
    try:
        if row["kind"] == "mix":
            mix = extra.get("mix") or {}
            clips = [ClipOps(row["clip_key"], int(row["slot"])), ClipOps(extra["clip_key_b"], int(extra["slot_b"]))]
            return Plan("mix", clips, "mix", row["text"], float(mix.get("snr_db", 0.0)),
                        None if mix.get("offset_fraction") is None else float(mix["offset_fraction"]),
                        bool(mix.get("natural_levels")))
        if row["kind"] == "modifiers":
            clips = [ClipOps(c["clip_key"], int(c["slot"]), {k: float(v) for k, v in (c.get("ops") or {}).items()
                                                             if k in OPS}) for c in extra["clips"]]
            combine = extra.get("combine", "single" if len(clips) == 1 else "concat")
            if combine not in ("single", "concat", "mix") or not clips:
                raise ValueError(f"combine {combine!r} with {len(clips)} clip(s)")
            mix = extra.get("mix") or {}
            snr = mix.get("snr_db")
            return Plan("modifiers", clips, combine, row["text"], None if snr is None else float(snr),
                        natural_levels=bool(mix.get("natural_levels")))
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"bad {row.get('kind')} row in caption table ({err!r})", path, number) from err
    return None


class LLMPlanTable:
    """Plans from a caption table, indexed by the first clip's key (``ClipRecord.key``).

    Args:
        path: JSONL(.gz)/CSV caption table.
        known_keys: keys of the training clips; plans naming other clips are dropped.
        kinds: which row kinds to use.
    """

    def __init__(self, path: str, known_keys: set[str], kinds: tuple[str, ...] = ("mix", "modifiers")):
        from lasr.data.caption_table import read_table

        self.path, self.by_first = str(path), {}
        self.dropped = 0
        for number, row in enumerate(read_table(path), 1):
            if row.get("kind") not in kinds or not row.get("text"):
                continue
            plan = _plan(row, number, self.path)
            if any(c.clip_key not in known_keys for c in plan.clips):
                self.dropped += 1
                continue
            self.by_first.setdefault(plan.clips[0].clip_key, []).append(plan)
        log.info("LLM plans from %s: %d clips with plans, %d plans dropped (clips not in the training set)",
                 self.path, len(self.by_first), self.dropped)

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_first.values())

    def plans_for(self, clip_key: str) -> list[Plan]:
        return self.by_first.get(clip_key, [])


# ---- AISTAT's LLM mix as added training data ---------------------------------------------------------------
def _pair_key(a: str, slot_a: int, b: str, slot_b: int) -> tuple[str, int, str, int]:
    return (str(a), int(slot_a), str(b), int(slot_b))


def read_mix_captions(path: str) -> dict[tuple[str, int, str, int], dict[str, Any]]:
    """``(clip a, slot a, clip b, slot b) -> {"texts": sorted LLM composites, "mix": params}`` from the ``mix``
    rows of a caption table (``lasr augment export``)."""
    from lasr.data.caption_table import read_table

    found: dict[tuple[str, int, str, int], dict[str, Any]] = {}
    for number, row in enumerate(read_table(path), 1):
        if row.get("kind") != "mix" or not row.get("text"):
            continue
        extra = row.get("extra") or {}
        try:
            key = _pair_key(row["clip_key"], row["slot"], extra["clip_key_b"], extra["slot_b"])
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"bad mix row in caption table ({err!r})", path, number) from err
        entry = found.setdefault(key, {"texts": set(), "mix": extra.get("mix") or {}})
        entry["texts"].add(row["text"])
    for entry in found.values():  # table order must not change the draws
        entry["texts"] = sorted(entry["texts"])
    return found


class LLMMixPairs(AddedTrainingSet):
    """AISTAT's LLM mix as added data: ``pairs`` new items, each two training clips overlaid (Wu et al. energy
    ratio, as :func:`lasr.augment.audio.transforms.mix_pair`) with the LLM's composite caption, verbatim.

    The pairs are :func:`lasr.augment.kinds.choose_mix_pairs` of the concatenated training records with ``seed``:
    the same draw ``lasr augment mix --pairs N --seed S`` makes on the same manifests, so every rank and rerun
    gets the same pairs, and each finds the captions the LLM wrote for it. A pair without a ``mix`` row in
    ``table`` is left out and counted (``missing``), never captioned otherwise; a table covering none of them
    is an error at setup. Each item draws one of its pair's stored composites per epoch.

    Args:
        table: caption table with ``mix`` rows.
        pairs: N, mixed pairs added (AISTAT: 50,000).
        weight: draws per pair and epoch.
        seed: seed of the pair draw (the ``--seed`` of the ``lasr augment mix`` run that wrote ``table``).
        max_peak: no mixture peaks above this.
    """

    def __init__(self, table: str, pairs: int = 50_000, weight: float = 1.0, seed: int = 0, max_peak: float = 0.99):
        super().__init__(weight)
        if pairs <= 0:
            raise ValueError(f"LLMMixPairs: pairs must be positive, got {pairs}")
        self.table, self.pairs, self.seed, self.max_peak = str(table), int(pairs), int(seed), float(max_peak)
        self.missing = 0

    @property
    def name(self) -> str:
        return f"llm-mix ({self.table})"

    @staticmethod
    def preflight_problems(args: dict[str, Any]) -> list[str]:
        """``lasr fit`` preflight: the caption table exists."""
        table = args.get("table")
        if table and not Path(table).is_file():
            return [f"LLM mix caption table {table} not found; make it with `lasr augment mix --pairs "
                    f"{args.get('pairs')} --seed {args.get('seed')}` on the training manifests and "
                    "`lasr augment export --kinds mix`"]
        return []

    def build(self, records: Sequence[ClipRecord], datamodule: Any) -> "LLMMixDataset":
        from lasr.augment.kinds import choose_mix_pairs

        if not Path(self.table).is_file():
            raise DataError("LLM mix caption table not found (run `lasr augment mix` and `lasr augment export`)",
                            self.table)
        captions = read_mix_captions(self.table)
        chosen = choose_mix_pairs(records, self.pairs, self.seed)
        kept = []
        for pair in chosen:
            entry = captions.get(_pair_key(pair["clip_key"], pair["slot"], pair["clip_key_b"], pair["slot_b"]))
            if entry is not None:
                kept.append({**pair, "texts": entry["texts"], "mix": {**pair["mix"], **entry["mix"]}})
        self.missing = len(chosen) - len(kept)
        if not kept:
            raise DataError(f"none of the {len(chosen)} mix pairs drawn with seed {self.seed} from the training "
                            f"manifests has an LLM caption in the table: run `lasr augment mix --pairs {self.pairs} "
                            f"--seed {self.seed}` on the same training manifests, in the same order", self.table)
        log.info("LLM mix: %d of %d pairs added (%d without an LLM caption left out; %d drawn of %d asked)",
                 len(kept), len(chosen), self.missing, len(chosen), self.pairs)
        augment = getattr(datamodule, "augment", None)
        return LLMMixDataset(records, kept, datamodule.sample_rate, datamodule.train_seconds,
                             datamodule.min_seconds, datamodule.strict, datamodule.max_retries, datamodule.seed,
                             self.max_peak, hard_negatives=bool(getattr(augment, "hard_negatives", False)))


def _mix_key(pair: dict[str, Any]) -> int:
    text = f"llm-mix|{pair['clip_key']}#{pair['slot']}|{pair['clip_key_b']}#{pair['slot_b']}"
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True)


class LLMMixDataset(_SkippingDataset):
    """The items of :class:`LLMMixPairs`: one per pair, shaped like the training items of the DataModules
    (``audio`` (S,) padded to ``max_seconds``, ``caption``, ids) plus ``source_keys`` (both clips' keys),
    ``augment`` = ``llm-mix:added`` and ``caption_augmented`` True. ``audio_key`` is the pair's own key (a positive
    only for its own caption); ``audio_id``/``dataset`` are the first clip's."""

    def __init__(self, records: Sequence[ClipRecord], pairs: list[dict[str, Any]], sample_rate: int,
                 max_seconds: float, min_seconds: float = 0.0, strict: bool = False, max_retries: int = 10,
                 seed: int = 0, max_peak: float = 0.99, hard_negatives: bool = False):
        super().__init__(strict, max_retries, seed)
        self.by_key = {r.key: r for r in records}
        self.pairs, self.max_peak, self.hard_negatives = list(pairs), max_peak, hard_negatives
        self.audio = _AudioSource(sample_rate, max_seconds, min_seconds)

    def __len__(self) -> int:
        return len(self.pairs)

    def _item(self, index: int, rng: np.random.Generator | None) -> dict[str, Any]:
        pair = self.pairs[index]
        first, second = self.by_key[pair["clip_key"]], self.by_key[pair["clip_key_b"]]
        mix = pair["mix"]
        ratio = None if mix.get("natural_levels") else float(mix.get("snr_db", 0.0))
        offset = mix.get("offset_fraction")
        if offset is None:
            offset = 0.0 if rng is None else float(rng.random())
        waves = [self.audio.read(first, rng)[0], self.audio.read(second, rng)[0]]
        try:
            wave, _ = T.mix_pair(waves[0], waves[1], ratio, float(offset), self.max_peak)
        except AudioError as err:  # a silent window: no energy to match
            raise AudioError(str(err), f"{first.audio_path} + {second.audio_path}") from err
        texts = pair["texts"]
        caption = texts[0] if rng is None else texts[int(rng.integers(len(texts)))]
        item = {
            "audio": pad_or_crop(wave, self.audio.length),
            "duration": min(wave.shape[-1], self.audio.length) / self.audio.sample_rate,
            "caption": caption, "caption_augmented": True, "audio_id": first.id, "audio_key": _mix_key(pair),
            "caption_id": f"{first.id}#{pair['slot']}+{second.id}#{pair['slot_b']}", "dataset": first.dataset,
            "index": index, "source_keys": [clip_key(first), clip_key(second)], "augment": "llm-mix:added",
        }
        if self.hard_negatives:
            item["hard_negative"] = None
        return item
