"""Data: manifests, audio I/O, corpus recipes, datasets and the shared DataModule."""
