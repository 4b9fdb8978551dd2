"""Embed audio collections with a trained dual encoder and search them by text or example audio.

``clips`` lists and loads a collection, ``embed`` writes the resumable on-disk index (``index``), ``topk`` is
the chunked exact search, ``search`` turns queries into ranked hits; the front ends of
``lasr embed`` / ``lasr search`` are :mod:`lasr.cli.embed` / :mod:`lasr.cli.search`.
"""
