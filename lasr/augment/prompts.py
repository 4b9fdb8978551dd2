"""Prompt templates: versioned YAML data files in ``lasr/augment/templates`` rendered to chat or plain text.

A template has ``id``, ``version``, ``instruction``, ``input`` (with ``{placeholders}``), ``input_label`` /
``output_label`` and few-shot ``examples`` (``input``/``output`` pairs). ``placeholders`` lists the fields a
caller must supply; every ``{name}`` used anywhere must be supplied, or rendering fails before any request.
Back-translation templates fill ``{example_1}``, ``{example_2}`` from ``pivot_examples[language]``.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from lasr.errors import LasrError

TEMPLATE_DIR = Path(str(resources.files("lasr.augment").joinpath("templates")))


class TemplateError(LasrError):
    """A template is malformed or a placeholder has no value."""


@dataclass(frozen=True)
class Prompt:
    """A fully rendered few-shot prompt (no placeholders left)."""

    instruction: str
    examples: tuple[tuple[str, str], ...]
    input: str
    input_label: str
    output_label: str

    def chat_messages(self) -> list[dict[str, str]]:
        """OpenAI chat messages: system instruction, one user/assistant turn per example, the final user turn."""
        messages = [{"role": "system", "content": self.instruction}]
        for example_in, example_out in self.examples:
            messages += [{"role": "user", "content": example_in}, {"role": "assistant", "content": example_out}]
        return messages + [{"role": "user", "content": self.input}]

    def completion_text(self) -> str:
        """Plain few-shot text for base models; the answer is expected on the line after ``output_label:``."""
        blocks = [self.instruction, ""]
        for example_in, example_out in self.examples:
            blocks += [f"{self.input_label}: {example_in}", f"{self.output_label}: {example_out}", ""]
        blocks += [f"{self.input_label}: {self.input}", f"{self.output_label}:"]
        return "\n".join(blocks)

    def echo_texts(self) -> list[str]:
        """Texts an output must not copy (the instruction and the few-shot outputs)."""
        return [self.instruction] + [out for _, out in self.examples]


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@dataclass(frozen=True)
class Template:
    id: str
    version: int
    data: dict[str, Any]
    digest: str

    @staticmethod
    def load(name_or_path: str | Path) -> "Template":
        """Load ``templates/<name>.yaml`` from the package, or a YAML file path."""
        path = Path(name_or_path)
        if not path.suffix:
            path = TEMPLATE_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise TemplateError(f"template {name_or_path!r} not found (looked for {path})")
        raw = path.read_bytes()
        data = yaml.safe_load(raw)
        for key in ("id", "version", "instruction", "input", "examples"):
            if key not in data:
                raise TemplateError(f"{path}: template has no {key!r}")
        return Template(str(data["id"]), int(data["version"]), data, hashlib.sha256(raw).hexdigest()[:16])

    @property
    def tag(self) -> str:
        """``id@version`` (goes into every request's cache key together with the file digest)."""
        return f"{self.id}@v{self.version}"

    @property
    def banned_words(self) -> tuple[str, ...]:
        return tuple(self.data.get("banned_words", ()))

    def required_fields(self) -> set[str]:
        texts = [self.data["instruction"], self.data["input"], str(self.data.get("output_label", ""))]
        texts += [str(self.data.get("input_label", ""))]
        for example in self.data["examples"]:
            texts += [str(example["input"]), str(example["output"])]
        return (_fields(" ".join(texts)) | set(self.data.get("placeholders", ()))) - {"example_1", "example_2"}

    def check(self, fields: dict[str, str]) -> None:
        """Raise :class:`TemplateError` naming every placeholder without a value."""
        missing = sorted(self.required_fields() - set(fields))
        if missing:
            raise TemplateError(f"template {self.tag} needs values for placeholders {missing}")
        pivots = self.data.get("pivot_examples")
        if pivots is not None and fields.get("language") not in pivots:
            raise TemplateError(f"template {self.tag} has no few-shot examples for language "
                                f"{fields.get('language')!r}; known: {sorted(pivots)}")

    def render(self, **fields: str) -> Prompt:
        self.check(fields)
        values = dict(fields)
        pivots = self.data.get("pivot_examples")
        if pivots is not None:
            values["example_1"], values["example_2"] = pivots[fields["language"]][:2]

        def fill(text: Any) -> str:
            return str(text).format(**values)

        examples = tuple((fill(e["input"]), fill(e["output"])) for e in self.data["examples"])
        return Prompt(fill(self.data["instruction"]).strip(), examples, fill(self.data["input"]),
                      fill(self.data.get("input_label", "Input")), fill(self.data.get("output_label", "Output")))
