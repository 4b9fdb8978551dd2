"""The ``lasr`` command: Lightning subcommands (fit/validate/test/predict) and tool subcommands.

Training subcommands go to :class:`lasr.cli.train.LasrCLI` (LightningCLI + jsonargparse); tools (``lasr data ...``)
are plain argparse sub-commands registered in :data:`TOOLS`, each a small module ``lasr/cli/<tool>.py`` with
``add_arguments(parser)`` and ``run(args) -> int`` that calls library code.

Every command shares one error path (:func:`main`): a :class:`~lasr.errors.LasrError` (or an ``OSError`` naming a
file) is printed as ``lasr <command>: error: <message>`` and exits with code 2; argument errors are the parser's own
message, also code 2. A traceback is shown only with ``--debug`` (anywhere on the command line) or ``LASR_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
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
    "data": ("lasr.cli.data", "prepare corpus manifests, make the demo corpus, mixture CSVs, inspect manifests"),
    "separate": ("lasr.cli.separate", "separate a sound from a recording by a text query"),
    "teachers": ("lasr.cli.teachers", "embed training clips and captions with stage-1 teachers (stage 2)"),
    "cluster": ("lasr.cli.cluster", "BERTopic topics of the training captions (stage 3 labels)"),
    "ensemble": ("lasr.cli.ensemble", "evaluate and average checkpoints; DCASE submission CSV"),
    "augment": ("lasr.cli.augment", "LLM caption augmentation: paraphrase, rewrite, backtranslate, mix, class-prompts, modifiers, export"),
    "zeroshot": ("lasr.cli.zeroshot", "zero-shot classification with template or LLM class prompts"),
    "embed": ("lasr.cli.embed", "embed an audio folder or manifest into a searchable index"),
    "search": ("lasr.cli.search", "search an embedding index by text or example audio"),
    "demo-chain": ("lasr.cli.demo_chain", "the whole retrieval recipe on the demo corpus, one table of metrics"),
    "weights": ("lasr.cli.weights", "list, check and download the pretrained weights; import the DCASE 2025 baseline"),
    "recipes": ("lasr.cli.recipes", "the shipped recipes (--config NAME): list them, copy one to edit"),
}

DEBUG_FLAG = "--debug"
DEBUG_ENV = "LASR_DEBUG"
VERSION_FLAGS = ("--version", "-V")


def version() -> str:
    """The installed distribution's version (package metadata), else the source tree's ``lasr.__version__``."""
    from importlib.metadata import PackageNotFoundError, version as installed

    try:
        return installed("lasr")
    except PackageNotFoundError:
        from lasr import __version__

        return __version__


def _overview() -> str:
    lines = ["usage: lasr [--debug] <command> [options]   |   lasr --version", "",
             "training (LightningCLI; `lasr fit --help` for all keys):"]
    lines += [f"  {name:<11} {text}" for name, text in LIGHTNING_SUBCOMMANDS.items()]
    lines += ["", "tools:"]
    lines += [f"  {name:<11} {text}" for name, (_, text) in TOOLS.items()]
    lines += ["", f"errors are one line (exit 2); {DEBUG_FLAG} or {DEBUG_ENV}=1 shows the traceback",
              "--config takes a file or a shipped recipe's name (`lasr recipes list`)",
              "example: lasr fit --config stage1_pretrain.yaml"]
    return "\n".join(lines)


def launched_rank() -> int:
    """This process's global rank as set by a launcher (torchrun, SLURM, Lightning's DDP launcher), else 0."""
    for name in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):  # the order Lightning's rank_zero_only reads them
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def _configure_logging() -> None:
    """INFO from lasr's own loggers to stderr (warnings only on ranks > 0, so a DDP run says things once); other
    libraries (Lightning) keep their own handlers."""
    logger = logging.getLogger("lasr")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO if launched_rank() == 0 else logging.WARNING)
        logger.propagate = False


def user_error(err: BaseException) -> BaseException | None:
    """The error to show the user in one line, or ``None`` for a bug (shown with its traceback).

    A :class:`LasrError` anywhere in the ``__cause__`` / ``__context__`` chain counts (libraries such as
    Lightning or jsonargparse may re-raise it wrapped), as does an ``OSError`` that names its file.
    """
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, LasrError):
            return current
        current = current.__cause__ or current.__context__
    if isinstance(err, OSError) and err.filename is not None:
        return err
    return None


def run_tool(name: str, argv: list[str]) -> int:
    module = importlib.import_module(TOOLS[name][0])
    parser = argparse.ArgumentParser(prog=f"lasr {name}", description=TOOLS[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    return int(module.run(args) or 0)


def _dispatch(command: str, argv: list[str]) -> int:
    if command in TOOLS:
        return run_tool(command, argv[1:])
    from lasr.cli.train import run_lightning

    return run_lightning(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")
    argv = [arg for arg in argv if arg != DEBUG_FLAG]
    _configure_logging()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_overview())
        return 0
    if argv[0] in VERSION_FLAGS:
        print(f"lasr {version()}")
        return 0
    command = argv[0]
    if command not in TOOLS and command not in LIGHTNING_SUBCOMMANDS:
        print(f"lasr: unknown command {command!r}\n\n{_overview()}", file=sys.stderr)
        return 2
    try:
        return _dispatch(command, argv)
    except Exception as err:  # noqa: BLE001 - the one place errors become messages
        shown = None if debug else user_error(err)
        if shown is None:
            raise
        message = " ".join(str(shown).split()) if isinstance(shown, OSError) else str(shown).strip()
        print(f"lasr {command}: error: {message}", file=sys.stderr)
        if not isinstance(shown, LasrError) or shown is not err:
            print(f"(run again with {DEBUG_FLAG} or {DEBUG_ENV}=1 for the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
