"""Zero-shot results as text, JSON, CSV and a confusion-matrix image."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from lasr.utils.atomic import atomic_open, atomic_path
from lasr.zeroshot.evaluate import ZeroShotResult
from lasr.zeroshot.prompts import ClassPrompts

FIGURE_INCHES_PER_CLASS = 0.35  # confusion-matrix figure size grows with the class count
MIN_FIGURE_INCHES = 5.0


def summary_line(name: str, result: ZeroShotResult) -> str:
    line = f"{name:<28} {result.metric} {100 * result.overall:6.2f} %  ({result.n_clips} clips, " \
           f"{len(result.labels)} classes, chance {100 / len(result.labels):.2f} %)"
    if result.per_fold:
        line += f"  fold mean {100 * result.fold_mean:6.2f} %"
    return line


def detail_lines(result: ZeroShotResult) -> list[str]:
    """Per-fold and per-class lines (classes sorted by score, best first)."""
    lines = []
    if result.per_fold:
        lines.append("per fold: " + "  ".join(f"{fold}: {100 * v:.1f}" for fold, v in result.per_fold.items()))
    per_class = "accuracy" if result.metric == "accuracy" else "AP"
    lines.append(f"per class {per_class} (%):")
    ranked = sorted(result.per_class.items(), key=lambda kv: -kv[1] if kv[1] == kv[1] else 1.0)
    lines += [f"  {label:<30} {100 * value:6.1f}" for label, value in ranked]
    return lines


def result_dict(result: ZeroShotResult) -> dict[str, Any]:
    return {"metric": result.metric, "overall": result.overall, "fold_mean": result.fold_mean,
            "per_fold": result.per_fold, "per_class": result.per_class, "n_clips": result.n_clips,
            "labels": result.labels}


def plot_confusion(result: ZeroShotResult, path: str | Path, title: str) -> None:
    """Row-normalised confusion matrix (true class down, predicted across) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = result.confusion.double()
    rates = counts / counts.sum(1, keepdim=True).clamp(min=1)
    size = max(MIN_FIGURE_INCHES, FIGURE_INCHES_PER_CLASS * len(result.labels))
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(rates.numpy(), vmin=0.0, vmax=1.0, cmap="viridis")
    ticks = range(len(result.labels))
    ax.set_xticks(ticks, result.labels, rotation=90, fontsize=7)
    ax.set_yticks(ticks, result.labels, fontsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, label="fraction of the true class")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def write_outputs(out: str | Path, name: str, result: ZeroShotResult, prompts: ClassPrompts,
                  settings: dict[str, Any]) -> list[Path]:
    """``{name}.json`` (metrics + settings + fallback labels), ``{name}_per_class.csv``, ``{name}_prompts.jsonl``
    (the exact prompts used) and, for single-label sets, ``{name}_confusion.png``. Returns the paths."""
    out = Path(out)
    paths = [out / f"{name}.json", out / f"{name}_per_class.csv", out / f"{name}_prompts.jsonl"]
    with atomic_open(paths[0], "w", encoding="utf-8") as handle:
        summary = dict(result_dict(result), settings=settings, fallback_labels=list(prompts.fallback))
        json.dump(summary, handle, indent=1)
    with atomic_open(paths[1], "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "accuracy" if result.metric == "accuracy" else "average_precision"])
        writer.writerows(result.per_class.items())
    with atomic_open(paths[2], "w", encoding="utf-8") as handle:
        for text, owner in zip(prompts.texts, prompts.owner):
            handle.write(json.dumps({"label": prompts.labels[owner], "prompt": text}) + "\n")
    if result.confusion is not None:
        paths.append(out / f"{name}_confusion.png")
        plot_confusion(result, paths[-1], f"{name}: {result.metric} {100 * result.overall:.1f} %")
    return paths
