"""UrbanSound8K (Salamon et al., ACM MM 2014): 8 732 labelled clips of up to 4 s in 10 predefined folds.

Layout under ``root``: ``metadata/UrbanSound8K.csv`` with
``slice_file_name,fsID,start,end,salience,fold,classID,class`` and ``audio/fold{fold}/{slice_file_name}``.
Records: id = file name, labels = (class,), fold = 1..10, no split; writes ``out_dir/urbansound8k.jsonl.gz``.
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
    nonempty_text,
    probe_and_finish,
    read_csv,
)

DATASET = "urbansound8k"
META = "metadata/UrbanSound8K.csv"
COLUMNS = ("slice_file_name", "fold", "classID", "class")
EXTRA_COLUMNS = {"classID": "target", "fsID": "freesound_id", "salience": "salience", "start": "start", "end": "end"}
AUDIO_DIR = "audio/fold{fold}"


def prepare_urbansound8k(
    root: str | Path,
    out_dir: str | Path | None = None,
    meta: str | Path | None = None,
    min_seconds: float = DEFAULT_MIN_SECONDS,
    skip_missing: bool = False,
    workers: int = DEFAULT_PROBE_WORKERS,
) -> PreparedCorpus:
    """Validate UrbanSound8K and write one manifest (``None`` ``out_dir`` validates only).

    Raises:
        DataError: listing every problem found (file and row each).
    """
    root = Path(root)
    problems = ProblemLog()
    table = read_csv(Path(meta) if meta else root / META, COLUMNS, problems)
    pending, locators = [], {}
    for row, fields in table.rows if table else []:
        name = nonempty_text(fields["slice_file_name"], "slice_file_name", table.path, row, problems)
        label = nonempty_text(fields["class"], "class", table.path, row, problems)
        fold = fields["fold"].strip()
        if not fold.isdigit() or int(fold) < 1:
            problems.add(f"fold {fold!r} is not an integer >= 1", table.path, row)
            continue
        if name is None or label is None:
            continue
        folder = root / AUDIO_DIR.format(fold=fold)
        locator = locators.setdefault(folder, AudioLocator([folder]))
        extra = {key: fields[col].strip() for col, key in EXTRA_COLUMNS.items() if col in fields}
        record_fields = dict(labels=(label,), dataset=DATASET, fold=int(fold), extra=extra)
        pending.append(PendingClip(name, locator.find([name]) or locator.expected(name), table.path, row,
                                   record_fields))
    records, report = probe_and_finish(DATASET, {DATASET: pending}, problems, out_dir, lambda g: f"{g}.jsonl.gz",
                                       min_seconds=min_seconds, skip_missing=skip_missing, workers=workers)
    group = records[DATASET]
    report.notes.append(f"{DATASET}: {len({r.labels for r in group})} classes, folds {sorted({r.fold for r in group})}")
    return records, report
