"""The ``lasr`` command: Lightning subcommands (fit/validate/test/predict) and tool subcommands.

Training subcommands go to :class:`LasrCLI` (LightningCLI + jsonargparse); tools (``lasr data ...``) are
plain argparse sub-commands registered in :data:`TOOLS`, each a module with ``add_arguments(parser)`` and
``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from lasr.errors import LasrError

LIGHTNING_SUBCOMMANDS = {
    "fit": "train a model (then test the best checkpoint when test data is configured)",
    "validate": "run one validation epoch",
    "test": "evaluate a checkpoint on the test set",
    "predict": "run prediction",
}

# name -> (module path, one-line help). Each module has add_arguments(parser) and run(args) -> int.
TOOLS: dict[str, tuple[str, str]] = {
    "data": ("lasr.data.commands", "prepare corpus manifests, make the demo corpus, inspect manifests"),
    "separate": ("lasr.separate", "separate a sound from a recording by a text query"),
    "teachers": ("lasr.distill.teachers", "embed training clips and captions with stage-1 teachers (stage 2)"),
    "cluster": ("lasr.distill.clusters", "BERTopic topics of the training captions (stage 3 labels)"),
    "ensemble": ("lasr.distill.ensemble", "evaluate and average checkpoints; DCASE submission CSV"),
    "augment": ("lasr.augment.commands", "LLM caption augmentation: paraphrase, rewrite, backtranslate, mix, class-prompts, modifiers, export"),
    "zeroshot": ("lasr.zeroshot.cli", "zero-shot classification with template or LLM class prompts"),
    "embed": ("lasr.search.embed_cli", "embed an audio folder or manifest into a searchable index"),
    "search": ("lasr.search.search_cli", "search an embedding index by text or example audio"),
    "weights": ("lasr.weights_cli", "list, check and download the pretrained weights of the recipes"),
}


def _overview() -> str:
    lines = ["usage: lasr <command> [options]", "", "training (LightningCLI; `lasr fit --help` for all keys):"]
    lines += [f"  {name:<10} {text}" for name, text in LIGHTNING_SUBCOMMANDS.items()]
    lines += ["", "tools:"]
    lines += [f"  {name:<10} {text}" for name, (_, text) in TOOLS.items()]
    lines += ["", "example: lasr fit --config configs/stage1_pretrain.yaml"]
    return "\n".join(lines)


def _configure_logging() -> None:
    """INFO from lasr's own loggers to stderr; other libraries (Lightning) keep their own handlers."""
    logger = logging.getLogger("lasr")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def run_tool(name: str, argv: list[str]) -> int:
    module = importlib.import_module(TOOLS[name][0])
    parser = argparse.ArgumentParser(prog=f"lasr {name}", description=TOOLS[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return int(module.run(args) or 0)
    except LasrError as err:
        print(f"lasr {name}: error: {err}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _configure_logging()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_overview())
        return 0
    command = argv[0]
    if command in TOOLS:
        return run_tool(command, argv[1:])
    if command in LIGHTNING_SUBCOMMANDS:
        from lasr.training_cli import run_lightning

        return run_lightning(argv)
    print(f"lasr: unknown command {command!r}\n\n{_overview()}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
