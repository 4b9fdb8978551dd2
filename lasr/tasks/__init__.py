"""LightningModules: thin tasks that receive model, loss terms and schedule through the config."""

from lasr.tasks.retrieval import RetrievalTask

__all__ = ["RetrievalTask"]
