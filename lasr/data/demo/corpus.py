"""Demo corpus writer: the Clotho / ESC-50 / separation-sources layouts, written atomically and reproducibly."""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lasr.data.demo.captions import CAPTIONS_PER_CLIP, make_captions, relevance
from lasr.data.demo.events import (
    BACKGROUND_DB, ESC10_TYPES, EVENT_TYPES, SOURCE_BACKGROUND_DB, ClipPlan, _sample_event, _uniform, attributes_of,
    plan_clip, render_clip, write_wav,
)
from lasr.errors import DataError
from lasr.utils.atomic import atomic_open

GENERATOR_VERSION = 1
SPLITS = ("development", "validation", "evaluation")
STAMP_NAME = ".demo_complete.json"
OWNED_ENTRIES = ("clotho", "esc50", "sources", "README.md")


# --------------------------------------------------------------------------------------------------------------
# Writers.
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoSpec:
    """Everything that determines the corpus (stored in the completion stamp; equal spec -> equal bytes)."""

    seed: int = 0
    n_development: int = 300
    n_validation: int = 60
    n_evaluation: int = 60
    sample_rate: int = 16000
    clip_seconds: tuple[float, float] = (4.0, 8.0)
    long_clip_fraction: float = 0.05
    long_clip_seconds: float = 12.0
    esc50_per_class_per_fold: int = 4
    esc50_clip_seconds: float = 5.0
    n_sources: int = 40
    source_clip_seconds: tuple[float, float] = (4.0, 6.0)
    generator_version: int = GENERATOR_VERSION

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _rng(spec: DemoSpec, *stream: int) -> np.random.Generator:
    """An independent generator per (corpus part, clip index, purpose), so parts do not depend on each other."""
    return np.random.default_rng([spec.seed, *stream])


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _clip_json(plan: ClipPlan, captions: list[dict[str, Any]]) -> dict[str, Any]:
    events = [{**asdict(ev), "onset": round(ev.onset, 4), "duration": round(ev.duration, 4),
               "offset": round(ev.onset + ev.duration, 4), "level_db": round(ev.level_db, 2),
               "params": {k: round(v, 2) for k, v in ev.params.items()}} for ev in plan.events]
    return {"file_name": plan.file_name, "duration": plan.duration, "structure": plan.structure,
            "background_db": round(plan.background_db, 2), "events": events, "captions": captions}


def _write_clotho_split(root: Path, spec: DemoSpec, split_index: int, split: str, count: int) -> list[dict]:
    audio_dir = root / f"clotho_audio_{split}"
    audio_dir.mkdir(parents=True)
    used: set[str] = set()
    clips, rows = [], []
    for i in range(count):
        rng = _rng(spec, 1, split_index, i)
        plan = plan_clip(rng, spec, f"{split}_{i + 1:04d}.wav")
        write_wav(audio_dir / plan.file_name, render_clip(plan, rng, spec.sample_rate), spec.sample_rate)
        captions = make_captions(plan, _rng(spec, 2, split_index, i), used)
        clips.append(_clip_json(plan, captions))
        rows.append([plan.file_name] + [c["text"] for c in captions])
    header = ["file_name"] + [f"caption_{k}" for k in range(1, CAPTIONS_PER_CLIP + 1)]
    _write_csv(root / f"clotho_captions_{split}.csv", header, rows)
    return clips


def _write_clotho(root: Path, spec: DemoSpec) -> dict[str, Any]:
    counts = dict(zip(SPLITS, (spec.n_development, spec.n_validation, spec.n_evaluation)))
    splits = {split: _write_clotho_split(root, spec, k, split, counts[split]) for k, split in enumerate(SPLITS)}
    queries = relevance(splits["evaluation"], _rng(spec, 3))
    _write_csv(root / "metadata_eval.csv", ["query", "audio_filenames"], [[q, repr(files)] for q, files in queries])
    metadata = {"generator": "lasr.data.demo", "spec": spec.to_json(),
                "event_types": {t: list(attributes_of(t)) for t in EVENT_TYPES}, "splits": splits}
    with open(root / "demo_metadata.json", "w", encoding="utf-8") as handle:
        json.dump(metadata, handle, ensure_ascii=False, indent=1)
    per_query = [len(files) for _, files in queries]
    return {"queries": len(queries), "relevant_mean": float(np.mean(per_query)), "relevant_max": max(per_query)}


def _isolated_plan(rng: np.random.Generator, event_type: str, role: str, name: str, length: float,
                   forced: dict[str, str] | None = None, background_db: float | None = None) -> ClipPlan:
    event = _sample_event(rng, event_type, role, forced)
    event.onset = _uniform(rng, (0.1, max(0.1, length - 0.1 - event.duration)))
    db = _uniform(rng, BACKGROUND_DB) if background_db is None else background_db
    return ClipPlan(name, length, "single", [event], db)


def _write_esc50(root: Path, spec: DemoSpec) -> int:
    """ESC-50 layout; clips come in groups of up to 3 takes (A/B/C) cut from one "source" with shared attributes."""
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    rows, sr = [], spec.sample_rate
    for target, event_type in enumerate(EVENT_TYPES):
        for fold in range(1, 6):
            for i in range(spec.esc50_per_class_per_fold):
                take_index = i % 3
                rng = _rng(spec, 4, target, fold, i)
                src_id = 10000 * (target + 1) + 100 * fold + i // 3
                shared = _sample_event(_rng(spec, 5, target, fold, i // 3), event_type, "only").attributes
                name = f"{fold}-{src_id}-{'ABC'[take_index]}-{target}.wav"
                plan = _isolated_plan(rng, event_type, "only", name, spec.esc50_clip_seconds, shared)
                write_wav(root / "audio" / name, render_clip(plan, rng, sr), sr)
                rows.append([name, fold, target, event_type, event_type in ESC10_TYPES, src_id, "ABC"[take_index]])
    rows.sort(key=lambda row: row[0])
    _write_csv(root / "meta" / "esc50.csv", ["filename", "fold", "target", "category", "esc10", "src_file", "take"],
               rows)
    return len(rows)


def _write_sources(root: Path, spec: DemoSpec) -> int:
    """Isolated single events (near-silent floor) with a label and one caption each, classes in turn."""
    root.mkdir(parents=True)
    rows, used, sr = [], set(), spec.sample_rate
    for i in range(spec.n_sources):
        rng = _rng(spec, 6, i)
        event_type = EVENT_TYPES[i % len(EVENT_TYPES)]
        name = f"source_{i + 1:04d}.wav"
        length = round(_uniform(rng, spec.source_clip_seconds), 2)
        plan = _isolated_plan(rng, event_type, "only", name, length, background_db=SOURCE_BACKGROUND_DB)
        write_wav(root / name, render_clip(plan, rng, sr), sr)
        caption = make_captions(plan, _rng(spec, 7, i), used, count=1)[0]["text"]
        rows.append([name, event_type, caption])
    _write_csv(root / "sources.csv", ["file_name", "label", "caption"], rows)
    return len(rows)


def _readme(spec: DemoSpec, counts: dict[str, int], stats: dict[str, Any]) -> str:
    classes = ", ".join(f"`{t}`" for t in EVENT_TYPES)
    return f"""# lasr demo corpus (synthetic)

Procedurally generated by `lasr.data.demo.make_demo` (generator version {spec.generator_version}) with
**seed {spec.seed}**. Every sound is synthesised with numpy (tones, buzzes, chirps, noise bursts, click, beep
and knock trains, sirens) over faint background noise; nothing was recorded. Regenerate it bit-identically with
`lasr data demo --out DIR --seed {spec.seed}` and the same counts.

Licence: generated data, dedicated to the public domain (CC0 1.0).

| part | clips |
| --- | --- |
| clotho development | {counts['development']} |
| clotho validation | {counts['validation']} |
| clotho evaluation | {counts['evaluation']} ({stats['queries']} relevance queries, \
{stats['relevant_mean']:.2f} relevant clips per query on average, at most {stats['relevant_max']}) |
| esc50 (10 classes x 5 folds) | {counts['esc50']} |
| sources | {counts['sources']} |

Audio: mono 16-bit PCM wav at {spec.sample_rate} Hz. Clotho-layout clips last {spec.clip_seconds[0]:g}-\
{spec.clip_seconds[1]:g} s (about {spec.long_clip_fraction:.0%} last {spec.long_clip_seconds:g} s), ESC-50 clips \
{spec.esc50_clip_seconds:g} s, sources {spec.source_clip_seconds[0]:g}-{spec.source_clip_seconds[1]:g} s.

Classes (ESC-50 `target` = position): {classes}.

Files:
- `clotho/clotho_captions_<split>.csv`: `file_name,caption_1..caption_5`, five differently worded true captions.
- `clotho/metadata_eval.csv`: `query,audio_filenames` (a Python list literal), DCASE 2025 style relevance.
- `clotho/demo_metadata.json`: ground truth per clip (events, roles, onsets, attributes) and per caption
  (which attributes it mentions).
- `esc50/meta/esc50.csv`: `filename,fold,target,category,esc10,src_file,take` as in ESC-50.
- `sources/sources.csv`: `file_name,label,caption` for isolated single events (separation sources).
"""


def _stamp_matches(out_dir: Path, spec: DemoSpec) -> bool:
    stamp = out_dir / STAMP_NAME
    try:
        saved = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return saved.get("spec") == spec.to_json() and all((out_dir / e).exists() for e in OWNED_ENTRIES)


def _summary(out_dir: Path, spec: DemoSpec, counts: dict[str, int], stats: dict[str, Any], reused: bool) -> dict:
    clotho = out_dir / "clotho"
    paths = {
        "root": out_dir, "clotho": clotho, "relevance": clotho / "metadata_eval.csv",
        "metadata": clotho / "demo_metadata.json", "esc50": out_dir / "esc50",
        "esc50_meta": out_dir / "esc50" / "meta" / "esc50.csv", "sources": out_dir / "sources",
        "sources_csv": out_dir / "sources" / "sources.csv", "readme": out_dir / "README.md",
    }
    for split in SPLITS:
        paths[f"captions_{split}"] = clotho / f"clotho_captions_{split}.csv"
        paths[f"audio_{split}"] = clotho / f"clotho_audio_{split}"
    return {"out_dir": str(out_dir), "seed": spec.seed, "sample_rate": spec.sample_rate, "counts": counts,
            "relevance": stats, "paths": {k: str(v) for k, v in paths.items()}, "reused": reused}


def _generate(tmp: Path, spec: DemoSpec) -> tuple[dict[str, int], dict[str, Any]]:
    stats = _write_clotho(tmp / "clotho", spec)
    counts = {"development": spec.n_development, "validation": spec.n_validation,
              "evaluation": spec.n_evaluation, "esc50": _write_esc50(tmp / "esc50", spec),
              "sources": _write_sources(tmp / "sources", spec)}
    (tmp / "README.md").write_text(_readme(spec, counts, stats), encoding="utf-8")
    return counts, stats


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Replace the owned entries of ``out_dir`` by those built in ``tmp`` (old ones are moved into ``tmp``)."""
    for entry in OWNED_ENTRIES:
        if (out_dir / entry).exists():
            os.replace(out_dir / entry, tmp / f".old-{entry}")
        os.replace(tmp / entry, out_dir / entry)


def _check_spec(spec: DemoSpec) -> None:
    for name in ("n_development", "n_validation", "n_evaluation", "esc50_per_class_per_fold", "n_sources"):
        if getattr(spec, name) < 1:
            raise DataError(f"{name} must be at least 1, got {getattr(spec, name)}")
    if spec.sample_rate < 8000:
        raise DataError(f"sample_rate must be at least 8000 Hz, got {spec.sample_rate}")
    low, high = spec.clip_seconds
    if not 4.0 <= low <= high:
        raise DataError(f"clip_seconds must be (low, high) with 4 <= low <= high, got {spec.clip_seconds}")
    if spec.esc50_clip_seconds < 4.0 or min(spec.source_clip_seconds) < 4.0:
        raise DataError("esc50_clip_seconds and source_clip_seconds must be at least 4 s (events last up to 3 s)")


def make_demo(
    out_dir: str | Path,
    seed: int = 0,
    n_development: int = 300,
    n_validation: int = 60,
    n_evaluation: int = 60,
    sample_rate: int = 16000,
    clip_seconds: tuple[float, float] = (4.0, 8.0),
    long_clip_fraction: float = 0.05,
    long_clip_seconds: float = 12.0,
    esc50_per_class_per_fold: int = 4,
    esc50_clip_seconds: float = 5.0,
    n_sources: int = 40,
    source_clip_seconds: tuple[float, float] = (4.0, 6.0),
    overwrite: bool = False,
) -> dict[str, Any]:
    """Synthesise the demo corpus under ``out_dir`` (created if needed); deterministic for a given argument set.

    The corpus is built in a hidden temporary folder inside ``out_dir`` and then renamed into place; a stamp
    file (``.demo_complete.json``, holding the arguments) is written last. Rerunning with the same arguments
    on a complete corpus is a no-op (``reused`` is True); other arguments regenerate and replace it.

    Args:
        out_dir: corpus root. Files other than ``clotho/``, ``esc50/``, ``sources/``, ``README.md`` are kept.
        seed: random seed; the same seed and arguments give bit-identical files.
        n_development, n_validation, n_evaluation: clips per Clotho-layout split (5 captions each).
        sample_rate: Hz of every wav (16-bit PCM, mono).
        clip_seconds: (min, max) length of Clotho-layout clips in seconds; a clip grows if its events need it.
        long_clip_fraction, long_clip_seconds: share of Clotho-layout clips that last ``long_clip_seconds``.
        esc50_per_class_per_fold: ESC-50-layout clips per class and fold (10 classes, 5 folds).
        esc50_clip_seconds: length of ESC-50-layout clips in seconds.
        n_sources: isolated single-event clips in ``sources/``.
        source_clip_seconds: (min, max) length of source clips in seconds.
        overwrite: allow replacing ``clotho/``, ``esc50/``, ``sources/`` or ``README.md`` in ``out_dir`` when
            they are not from a complete demo corpus (otherwise that raises :class:`DataError`).

    Returns:
        ``{"out_dir", "seed", "sample_rate", "counts": {split/esc50/sources: n}, "relevance": {"queries",
        "relevant_mean", "relevant_max"}, "paths": {name: str}, "reused": bool, "seconds": float}``.
    """
    started = time.perf_counter()
    spec = DemoSpec(seed, n_development, n_validation, n_evaluation, sample_rate, tuple(clip_seconds),
                    long_clip_fraction, long_clip_seconds, esc50_per_class_per_fold, esc50_clip_seconds,
                    n_sources, tuple(source_clip_seconds))
    _check_spec(spec)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError("demo corpus output exists and is not a directory", out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if _stamp_matches(out_dir, spec):
        saved = json.loads((out_dir / STAMP_NAME).read_text(encoding="utf-8"))
        summary = _summary(out_dir, spec, saved["counts"], saved["relevance"], reused=True)
        return {**summary, "seconds": time.perf_counter() - started}
    has_stamp = (out_dir / STAMP_NAME).exists()
    clashing = [e for e in OWNED_ENTRIES if (out_dir / e).exists()]
    if clashing and not has_stamp and not overwrite:
        raise DataError(f"{', '.join(clashing)} already exist and are not a complete demo corpus; "
                        "choose an empty directory or pass overwrite=True", out_dir)
    tmp = Path(tempfile.mkdtemp(prefix=".demo-tmp-", dir=out_dir))
    try:
        counts, stats = _generate(tmp, spec)
        (out_dir / STAMP_NAME).unlink(missing_ok=True)
        _swap_in(tmp, out_dir)
        with atomic_open(out_dir / STAMP_NAME, "w", encoding="utf-8") as handle:
            json.dump({"spec": spec.to_json(), "counts": counts, "relevance": stats}, handle, indent=1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {**_summary(out_dir, spec, counts, stats, reused=False), "seconds": time.perf_counter() - started}
