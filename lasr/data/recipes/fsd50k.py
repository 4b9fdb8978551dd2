"""FSD50K (Fonseca et al., TASLP 2022): 51 197 multi-label clips, 200 AudioSet-ontology classes.

Layout under ``root``: ``FSD50K.ground_truth/dev.csv`` (``fname,labels,mids,split`` with split train/val) and
``FSD50K.ground_truth/eval.csv`` (``fname,labels,mids``); ``labels`` is a comma-separated list such as
``Electric_guitar,Guitar,Music``; audio in ``FSD50K.dev_audio/{fname}.wav`` and ``FSD50K.eval_audio/{fname}.wav``.
Records: id = fname, labels = the list, split = train / val / eval; writes ``out_dir/fsd50k_{split}.jsonl.gz``.

DCASE 2024 Task 9 captions (``auto_captions``): the task's development set (zenodo 10887496) adds one GPT-4
caption per FSD50K clip in ``fsd50k_dev_auto_caption.json`` (dev = train + val) and ``fsd50k_eval_auto_caption.json``,
in the baseline's data-file layout ``{"data": [{"wav": "<fname>.wav", "caption": "..."}, ...]}``. Given the folder
holding them, every record gets its caption verbatim (joined on the file name, any folder part of ``wav`` ignored);
clips the JSON does not caption are left out of the manifest and counted in the report, since a separation
target needs a query.
"""

from __future__ import annotations

import json
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
AUTO_CAPTIONS = {"dev": "fsd50k_dev_auto_caption.json", "eval": "fsd50k_eval_auto_caption.json"}


def read_auto_captions(path: Path, problems: ProblemLog) -> dict[str, str]:
    """fname (file stem) -> caption from a DCASE 2024 T9 auto-caption JSON; bad items are logged as problems."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        problems.add(f"cannot read the auto-caption JSON: {err}", path)
        return {}
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        problems.add('expected {"data": [{"wav": ..., "caption": ...}, ...]}', path)
        return {}
    captions: dict[str, str] = {}
    for index, item in enumerate(items):
        where = f"data[{index}]"
        wav = item.get("wav") if isinstance(item, dict) else None
        caption = item.get("caption") if isinstance(item, dict) else None
        if not isinstance(wav, str) or not wav.strip() or not isinstance(caption, str) or not caption.strip():
            problems.add('an item needs a non-empty "wav" and "caption"', path, where)
            continue
        fname = Path(wav.strip().replace("\\", "/")).stem
        if fname in captions:
            problems.add(f"second caption for {fname!r}", path, where)
            continue
        captions[fname] = caption
    return captions


def _read_part(root: Path, part: str, splits: set[str], problems: ProblemLog,
               captions: dict[str, str] | None = None, uncaptioned: list[str] | None = None,
               ) -> dict[str, list[PendingClip]]:
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
        if captions is not None:
            if fname not in captions:
                if uncaptioned is not None:
                    uncaptioned.append(fname)
                continue
            record_fields["captions"] = (captions[fname],)
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
    auto_captions: str | Path | None = None,
) -> PreparedCorpus:
    """Validate FSD50K and write one manifest per split (default: every split whose ground truth exists).

    Args:
        auto_captions: folder with the DCASE 2024 T9 ``fsd50k_{dev,eval}_auto_caption.json`` (see the module
            docstring); records then carry their caption and uncaptioned clips are left out (and counted).

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
    notes: list[str] = []
    for part in ("dev", "eval"):
        if wanted & ({"eval"} if part == "eval" else {"train", "val"}):
            captions = None
            if auto_captions is not None:
                path = Path(auto_captions) / AUTO_CAPTIONS[part]
                if not path.is_file():
                    problems.add(f"{AUTO_CAPTIONS[part]} not found (DCASE 2024 T9 development set, "
                                 "zenodo 10887496)", path)
                    continue
                captions = read_auto_captions(path, problems)
            uncaptioned: list[str] = []
            groups = _read_part(root, part, wanted, problems, captions, uncaptioned)
            pending.update(groups)
            if captions is not None:
                joined = sum(len(group) for group in groups.values())
                notes.append(f"{AUTO_CAPTIONS[part]}: {len(captions)} captions; {joined} clips captioned, "
                             f"{len(uncaptioned)} left out for want of a caption"
                             + (f" (e.g. {uncaptioned[0]})" if uncaptioned else ""))
    records, report = probe_and_finish(DATASET, pending, problems, out_dir, lambda g: f"{DATASET}_{g}.jsonl.gz",
                                       notes=notes, min_seconds=min_seconds, skip_missing=skip_missing,
                                       workers=workers)
    labels = {label for group in records.values() for r in group for label in r.labels}
    report.notes.append(f"{DATASET}: {len(labels)} classes over splits {sorted(records)}")
    return records, report
