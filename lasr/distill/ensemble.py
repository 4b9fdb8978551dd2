"""``lasr ensemble``: evaluate one or more checkpoints and their ensemble; write the DCASE submission files.

The ensemble score of caption q and clip j is the weighted mean of the members' cosine similarities,
``S = sum_m w_m T_m A_m^T / sum_m w_m``.  Because ``S`` equals the dot product of the members' embeddings
concatenated after scaling each by ``sqrt(w_m / sum w)``, the official metrics of
:mod:`lasr.metrics.retrieval` run unchanged (and memory-bounded) on those concatenated embeddings.

Files written to ``--out`` (atomically): ``metrics.json`` (every member and the ensemble), ``submission.csv``
(one row per query, one column per audio file name, ensemble scores: the DCASE 2025 format) and ``topk.csv``
(``query,fname_1..fname_k``, best first).
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from lasr.data.manifest import ClipRecord, read_manifest
from lasr.data.teacher_store import teacher_dir_name, write_json
from lasr.data.verify import verify_eval_records
from lasr.errors import DataError, LasrError
from lasr.metrics.retrieval import load_relevance_csv, resolve_relevance, retrieval_metrics
from lasr.models.checkpoints import require_distinct
from lasr.models.embedding import DEFAULT_SECONDS, embed_clips, embed_texts, resolve_device
from lasr.models.run_config import configs_per_checkpoint, load_dual_encoder
from lasr.utils.atomic import atomic_open

log = logging.getLogger(__name__)


@dataclass
class Member:
    """One checkpoint's embeddings of the evaluation set: audio (N, E), captions (Q, E), queries (Qs, E)."""

    name: str
    audio: Tensor
    text: Tensor
    queries: Tensor


@dataclass
class EvalSet:
    records: list[ClipRecord]
    captions: list[str]          # every caption, flattened clip by clip
    owners: list[int]            # clip row of each caption
    names: list[str]             # audio file basename per clip (submission columns)


def load_eval_set(manifests: Sequence[str]) -> EvalSet:
    records = [r for path in manifests for r in read_manifest(path)]
    if not records:
        raise DataError("no clips in the manifests", ", ".join(manifests))
    names = [Path(r.audio_path).name for r in records]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})[:5]
        raise DataError(f"audio file names repeat (submission columns must be unique): {dupes}", manifests[0])
    captions = [c for r in records for c in r.captions]
    owners = [row for row, r in enumerate(records) for _ in r.captions]
    return EvalSet(records, captions, owners, names)


def weighted_concat(parts: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """Concatenate (R, E_m) blocks scaled by sqrt(w_m / sum w): their dot products are the weighted mean."""
    total = float(sum(weights))
    return torch.cat([p * (w / total) ** 0.5 for p, w in zip(parts, weights)], dim=1)


def ensemble_scores(members: Sequence[Member], weights: Sequence[float]) -> Tensor:
    """(Qs, N) weighted mean over members of query x clip cosine similarities."""
    total = float(sum(weights))
    return sum(w / total * (m.queries @ m.audio.T) for m, w in zip(members, weights))


def embed_member(checkpoint: str, config: str | None, data: EvalSet, queries: Sequence[str], seconds: float | None,
                 batch_size: int, device: str) -> Member:
    loaded = load_dual_encoder(checkpoint, config, resolve_device(device))
    crop = seconds or loaded.eval_seconds or DEFAULT_SECONDS
    audio = embed_clips(loaded.model, data.records, crop, batch_size)
    text = embed_texts(loaded.model, data.captions, batch_size)
    caption_rows = {c: i for i, c in reversed(list(enumerate(data.captions)))}  # first occurrence wins
    extra = [q for q in dict.fromkeys(queries) if q not in caption_rows]
    extra_emb = embed_texts(loaded.model, extra, batch_size) if extra else text[:0]
    extra_rows = {q: len(data.captions) + i for i, q in enumerate(extra)}
    pool = torch.cat([text, extra_emb])
    rows = [caption_rows[q] if q in caption_rows else extra_rows[q] for q in queries]
    return Member(teacher_dir_name(checkpoint).rsplit("-", 1)[0], audio, text, pool[rows])


def _metrics(audio: Tensor, text: Tensor, data: EvalSet, relevance: tuple | None) -> dict[str, float]:
    if not data.captions:
        return {}
    query_rows, relevant = relevance if relevance else (None, None)
    metrics = retrieval_metrics(audio, text, torch.tensor(data.owners), relevant=relevant, query_rows=query_rows)
    return dict(metrics, n_audio=len(data.records), n_text=len(data.captions))


SUBMISSION_INDEX = "index"  # first header cell, as the baseline's predict.py writes it (DataFrame index name)


def write_submission(path: Path, queries: Sequence[str], names: Sequence[str], scores: Tensor) -> None:
    """DCASE submission as the DCASE 2025 baseline's ``predict.py`` writes it (pandas ``DataFrame.to_csv``):
    header ``index,<file 1>,...``; one row per query (its verbatim text), scores at full precision (shortest
    round-trip repr), ``\n`` line ends. Scores are cosine similarities; the baseline writes cosine / 1024
    (``mean(q * a)``), which ranks identically."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([SUBMISSION_INDEX, *names])
        for query, row in zip(queries, scores.double().tolist()):
            writer.writerow([query, *(repr(value) for value in row)])


def write_topk(path: Path, queries: Sequence[str], names: Sequence[str], scores: Tensor, k: int) -> None:
    """``query,fname_1..fname_k``: the k best files per query, best first."""
    k = min(k, scores.shape[1])
    top = torch.topk(scores, k, dim=1).indices.tolist()
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["query", *(f"fname_{i}" for i in range(1, k + 1))])
        for query, columns in zip(queries, top):
            writer.writerow([query, *(names[j] for j in columns)])


def read_queries(path: str) -> list[str]:
    """Query captions from a CSV with a ``query`` or ``caption`` column (first column otherwise)."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise DataError("empty query file", path)
    header = [h.strip().lower() for h in rows[0]]
    column = next((header.index(n) for n in ("query", "caption") if n in header), 0)
    return [row[column] for row in rows[1:] if len(row) > column and row[column].strip()]


def format_table(columns: dict[str, dict[str, float]], title: str = "") -> str:
    """Metrics (rows, in percent) side by side for several named columns (e.g. members and the ensemble)."""
    names = list(columns)
    metrics = [k for k in dict.fromkeys(k for c in columns.values() for k in c) if not k.startswith("n_")]
    width = max([12, *(len(n) + 2 for n in names)])
    lines = [title] if title else []
    lines.append(f"{'metric':<20}" + "".join(f"{n:>{width}}" for n in names))
    for metric in metrics:
        cells = [f"{100 * columns[n][metric]:{width}.2f}" if metric in columns[n] else f"{'-':>{width}}" for n in names]
        lines.append(f"{metric:<20}" + "".join(cells))
    return "\n".join(lines)


def run_ensemble(checkpoints: Sequence[str], manifests: Sequence[str], out: str | Path,
                 configs: Sequence[str] | None = None, relevance: str | None = None, queries: str | None = None,
                 weights: Sequence[float] | None = None, top_k: int = 16, seconds: float | None = None,
                 batch_size: int = 32, device: str = "auto") -> dict[str, Any]:
    """Embed the evaluation set with every checkpoint, score members and ensemble, write the files."""
    weights = list(weights or [1.0] * len(checkpoints))
    if len(weights) != len(checkpoints) or min(weights) < 0 or sum(weights) <= 0:
        raise LasrError(f"--weights: need {len(checkpoints)} non-negative weights with a positive sum, got {weights}")
    require_distinct(checkpoints, "ensemble members")
    data = load_eval_set(manifests)
    verify_eval_records(data.records, "evaluation")
    table = load_relevance_csv(relevance) if relevance else None
    if table is not None:
        query_texts = list(table)
        resolved = resolve_relevance(table, data.captions, data.names, relevance)
    else:
        query_texts = read_queries(queries) if queries else list(dict.fromkeys(data.captions))
        resolved = None
    if not query_texts:
        raise DataError("no queries: the manifests have no captions; pass --queries", manifests[0])
    members = [embed_member(c, cfg, data, query_texts, seconds, batch_size, device)
               for c, cfg in zip(checkpoints, configs_per_checkpoint(checkpoints, configs))]
    names = [m.name if [x.name for x in members].count(m.name) == 1 else f"{i}:{m.name}" for i, m in enumerate(members)]
    columns = {n: _metrics(m.audio, m.text, data, resolved) for n, m in zip(names, members)}
    if len(members) > 1:
        columns["ensemble"] = _metrics(weighted_concat([m.audio for m in members], weights),
                                       weighted_concat([m.text for m in members], weights), data, resolved)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scores = ensemble_scores(members, weights)
    write_submission(out / "submission.csv", query_texts, data.names, scores)
    write_topk(out / "topk.csv", query_texts, data.names, scores, top_k)
    result = {"checkpoints": [str(Path(c).absolute()) for c in checkpoints], "weights": weights, "metrics": columns,
              "n_queries": len(query_texts), "n_audio": len(data.records)}
    write_json(out / "metrics.json", result)
    return result
