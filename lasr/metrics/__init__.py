"""Evaluation metrics: retrieval (official DCASE 2025 Task 6 computation)."""

from lasr.metrics.retrieval import (
    DEFAULT_CHUNK_SIZE,
    RetrievalEmbeddings,
    audio_to_text_ranks,
    average_precision_at_k,
    load_relevance_csv,
    map_at_k_single,
    multi_relevance_map_at_k,
    multi_relevance_ranks,
    recall_at_k,
    resolve_relevance,
    retrieval_metrics,
    text_to_audio_ranks,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "RetrievalEmbeddings",
    "audio_to_text_ranks",
    "average_precision_at_k",
    "load_relevance_csv",
    "map_at_k_single",
    "multi_relevance_map_at_k",
    "multi_relevance_ranks",
    "recall_at_k",
    "resolve_relevance",
    "retrieval_metrics",
    "text_to_audio_ranks",
]
