"""FSD50K (Fonseca et al., TASLP 2022): 51 197 multi-label clips, 200 AudioSet-ontology classes.

Layout under ``root``: ``FSD50K.ground_truth/dev.csv`` (``fname,labels,mids,split`` with split train/val) and
``FSD50K.ground_truth/eval.csv`` (``fname,labels,mids``); ``labels`` is a comma-separated list such as
``Electric_guitar,Guitar,Music``; audio in ``FSD50K.dev_audio/{fname}.wav`` and ``FSD50K.eval_audio/{fname}.wav``.
Records: id = fname, labels = the list, split = train / val / eval; writes ``out_dir/fsd50k_{split}.jsonl.gz``.
"""

from __future__ import annotations

from pathlib import Path

from lasr.data.recipes.common import (
    DEFAULT_MIN_SECONDS,
    DEFAULT_PROBE_WORKERS,
    AudioLocator,
    PendingClip,
    PreparedCorpus,
    ProblemLog,
    probe_and_finish,
    read_csv,
)

DATASET = "fsd50k"
SPLITS = ("train", "val", "eval")
GROUND_TRUTH = {"dev": "FSD50K.ground_truth/dev.csv", "eval": "FSD50K.ground_truth/eval.csv"}
AUDIO_DIRS = {"dev": "FSD50K.dev_audio", "eval": "FSD50K.eval_audio"}
AUDIO_EXTENSION = ".wav"


def _read_part(root: Path, part: str, splits: set[str], problems: ProblemLog) -> dict[str, list[PendingClip]]:
    required = ["fname", "labels"] + (["split"] if part == "dev" else [])
    table = read_csv(root / GROUND_TRUTH[part], required, problems)
    locator = AudioLocator([root / AUDIO_DIRS[part]])
    groups: dict[str, list[PendingClip]] = {}
    for row, fields in table.rows if table else []:
        split = fields["split"].strip() if part == "dev" else "eval"
        if split not in SPLITS:
            problems.add(f"split {split!r} is not one of {SPLITS[:2]}", table.path, row)
            continue
        if split not in splits:
            continue
        fname = fields["fname"].strip()
        labels = tuple(x.strip() for x in fields["labels"].split(",") if x.strip())
        if not fname or not labels:
            problems.add("empty fname or labels", table.path, row)
            continue
        extra = {"mids": fields["mids"].strip()} if "mids" in fields else {}
        name = fname + AUDIO_EXTENSION
        record_fields = dict(labels=labels, split=split, dataset=DATASET, extra=extra)
        groups.setdefault(split, []).append(
            PendingClip(fname, locator.find([name]) or locator.expected(name), table.path, row, record_fields))
    return groups


def prepare_fsd50k(
    root: str | Path,
    out_dir: str | Path | None = None,
    splits: list[str] | None = None,
    min_seconds: float = DEFAULT_MIN_SECONDS,
    skip_missing: bool = False,
    workers: int = DEFAULT_PROBE_WORKERS,
) -> PreparedCorpus:
    """Validate FSD50K and write one manifest per split (default: every split whose ground truth exists).

    Raises:
        DataError: listing every problem found (file and row each).
    """
    root = Path(root)
    problems = ProblemLog()
    wanted = set(splits or [s for s in SPLITS if (root / GROUND_TRUTH["eval" if s == "eval" else "dev"]).is_file()])
    unknown = wanted - set(SPLITS)
    if unknown:
        problems.add(f"unknown split(s) {sorted(unknown)}; choose from {SPLITS}", root)
    pending: dict[str, list[PendingClip]] = {}
    for part in ("dev", "eval"):
        if wanted & ({"eval"} if part == "eval" else {"train", "val"}):
            pending.update(_read_part(root, part, wanted, problems))
    records, report = probe_and_finish(DATASET, pending, problems, out_dir, lambda g: f"{DATASET}_{g}.jsonl.gz",
                                       min_seconds=min_seconds, skip_missing=skip_missing, workers=workers)
    labels = {label for group in records.values() for r in group for label in r.labels}
    report.notes.append(f"{DATASET}: {len(labels)} classes over splits {sorted(records)}")
    return records, report
