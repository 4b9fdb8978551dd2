"""LLM caption augmentation (``lasr augment``): prompt templates, backends, a resumable store, filters, export.

Modules: ``prompts`` (YAML templates in ``templates/``), ``requests`` (LLMRequest + custom_id), ``kinds``
(request builders per kind), ``backends`` (openai / local / vllm / batch), ``store`` (SQLite WAL),
``filters`` (parsing + rejection reasons + MiniLM fidelity), ``jobs`` (run, retry, summary), ``export``
(caption table), ``loopback`` (fake OpenAI-compatible server), ``commands`` (CLI). See docs/augment.md.
"""
