"""The ``mix`` and ``modifiers`` rows of an exported caption table (``lasr augment export``) as serving plans.

* ``mix`` row: clips ``clip_key``/``slot`` and ``extra.clip_key_b``/``slot_b``, ``extra.mix`` =
  ``{snr_db, offset_fraction}``; ``text`` is the LLM's composite caption of the overlay.
* ``modifiers`` row: ``extra.clips`` = ``[{clip_key, slot, ops}]`` with ops ``gain_db``, ``pitch_semitones``,
  ``speed``, ``crop_fraction``; ``extra.combine`` in ``single|concat|mix``; ``extra.mix.snr_db`` for mixes.

Plans are indexed by their first clip, so a training item for clip A can be served as one of A's plans.
Plans naming a clip that is not in the training manifests are dropped (counted in ``dropped``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from lasr.errors import DataError

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
