"""Stages 2 and 3 of the retrieval recipe: teacher embeddings, caption clusters, ensembles.

Heavy dependencies (BERTopic, UMAP, sentence-transformers) are imported only inside the functions that need them.
"""
