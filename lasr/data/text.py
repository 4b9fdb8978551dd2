"""Caption text: one function per purpose.

- Exact matching against official files (relevance queries, submission rows, caption tables keyed by text)
  uses the caption **verbatim**, as the official CSV has it (trailing spaces included): no function here.
- :func:`clean_for_text_encoder` is what the text tower sees, the DCASE 2025 Task 6 baseline's cleaning.
- :func:`caption_identity_key` decides whether two captions say the same thing (duplicate LLM answers, a
  mixture's interferer whose caption equals the query); it never feeds a model or an official file.
"""

from __future__ import annotations

import re
import string

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_NON_WORD = re.compile(r"[^\w\s]")


def clean_for_text_encoder(text: str, lowercase: bool = True, strip_punctuation: bool = True) -> str:
    """The baseline's caption cleaning before tokenising: ``text.lower()``, then every ``string.punctuation``
    character deleted (not replaced by a space). Whitespace is left as it is: the tokenizer handles it."""
    if lowercase:
        text = text.lower()
    if strip_punctuation:
        text = text.translate(_PUNCTUATION)
    return text


def caption_identity_key(text: str) -> str:
    """Lower-cased, punctuation replaced by spaces, whitespace collapsed: equal keys = the same caption."""
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())
