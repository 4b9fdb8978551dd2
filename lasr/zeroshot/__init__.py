"""Zero-shot audio classification with a trained dual encoder (ReCLAP protocol).

``prompts`` builds class prompts (template or an LLM prompt table), ``classify`` scores and aggregates,
``evaluate`` embeds a labelled set and computes accuracy / mAP per class and fold, ``report`` writes results
and the confusion matrix, ``data`` reads the evaluation sets, ``cli`` is ``lasr zeroshot``.
"""
