"""Embed audio collections with a trained dual encoder and search them by text or example audio.

``clips`` lists and loads a collection, ``embed`` writes the resumable on-disk index (``index``), ``topk`` is
the chunked exact search, ``search`` turns queries into ranked hits; ``embed_cli`` / ``search_cli`` are the
``lasr embed`` / ``lasr search`` tools.
"""
