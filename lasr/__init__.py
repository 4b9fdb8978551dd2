"""lasr: audio-language models with Lightning (retrieval, language-queried separation, zero-shot)."""

__version__ = "0.1.0"
