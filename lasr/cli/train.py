"""LightningCLI for ``lasr fit|validate|test|predict --config FILE.yaml``.

Model and data are given by ``class_path`` in the config (any LightningModule / LightningDataModule), so one
CLI serves every lasr task. After ``fit`` the best checkpoint (by the configured monitor) is tested when the
data module has a test set, and a results table with chance levels is printed.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Literal

import lightning as L
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities import rank_zero_only

from lasr.tasks.preflight import run_preflight
from lasr.cli.config_overlays import expand_overlays
from lasr.tasks.callbacks import LogProgress

log = logging.getLogger(__name__)

# Lightning 2.6 calls jsonargparse APIs deprecated in 4.49; those warnings are for Lightning, not our users
os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")


def format_results(metrics: dict[str, float], chance: dict[str, float] | None = None, title: str = "",
                   unit: str = "%") -> str:
    """A plain-text table of metrics, with a chance column where known. Values are fractions shown in percent
    when ``unit`` is "%", else printed as they are (e.g. dB)."""
    chance = chance or {}
    scale = 100.0 if unit == "%" else 1.0
    lines = [title] if title else []
    lines.append(f"{'metric':<22}{f'value ({unit})':>12}{f'chance ({unit})':>13}")
    for name, value in metrics.items():
        if name.startswith("n_"):
            continue
        ref = f"{scale * chance[name]:13.2f}" if name in chance else f"{'':>13}"
        lines.append(f"{name:<22}{scale * value:12.2f}{ref}")
    counts = ", ".join(f"{k[2:]}={int(v)}" for k, v in metrics.items() if k.startswith("n_"))
    if counts:
        lines.append(f"({counts})")
    return "\n".join(lines)


class LasrCLI(LightningCLI):
    def __init__(self, args: list[str] | None = None):  # args=None: parse sys.argv
        super().__init__(
            model_class=L.LightningModule,
            datamodule_class=L.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            auto_configure_optimizers=False,
            save_config_kwargs={"overwrite": True},
            trainer_defaults={"callbacks": [LogProgress()]},  # progress lines when the bar is off (logs)
            args=args,
        )

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--test_after_fit", type=bool, default=True,
                            help="after fit, test the best checkpoint when the data module has a test set")
        parser.add_argument("--test_ckpt", type=Literal["best", "last"], default="best",
                            help="checkpoint tested after fit: best (by the monitor) or last (the final epoch, as "
                                 "the DCASE 2025 baseline tests)")

    def before_instantiate_classes(self) -> None:
        if self.subcommand in ("fit", "validate", "test"):
            run_preflight(self.config[self.subcommand].as_dict())

    def before_fit(self) -> None:
        config = self.config_init[self.subcommand]
        if config.get("ckpt_path") == "last" and (newer := newer_hpc_checkpoint(self.trainer)):
            log.info("resuming from %s, Lightning's SLURM requeue checkpoint, newer than every last*.ckpt", newer)
            config["ckpt_path"] = newer

    def after_fit(self) -> None:
        self._print_stage("val", "validation (last epoch)")
        config = self.config[self.subcommand]
        has_test = bool(getattr(self.datamodule, "test_sources", None))
        if config.get("test_after_fit", True) and has_test and not self.trainer.interrupted:
            which = config.get("test_ckpt", "best")
            path = self._best_checkpoint() if which == "best" else self._last_checkpoint()
            self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=path or None)
            self._print_stage("test", f"test ({f'{which} checkpoint ' + path if path else 'final weights'})")

    def _best_checkpoint(self) -> str:
        """The file of the first checkpoint callback that monitors a metric (the others keep last/periodic
        checkpoints), or "" when there is none."""
        for callback in self.trainer.checkpoint_callbacks:
            if getattr(callback, "monitor", None) and getattr(callback, "best_model_path", ""):
                return callback.best_model_path
        return ""

    def _last_checkpoint(self) -> str:
        """The newest file of the unmonitored checkpoint callbacks (``last.ckpt``, written each epoch), or ""
        (then the final weights in memory, which are the same)."""
        newest = [callback.best_model_path for callback in self.trainer.checkpoint_callbacks
                  if not getattr(callback, "monitor", None) and getattr(callback, "best_model_path", "")]
        return max(newest, key=lambda path: Path(path).stat().st_mtime, default="")

    def after_test(self) -> None:
        self._print_stage("test", "test")

    def after_validate(self) -> None:
        self._print_stage("val", "validation")

    @rank_zero_only
    def _print_stage(self, stage: str, title: str) -> None:
        metrics = getattr(self.model, "last_metrics", {}).get(stage)
        if not metrics:
            return
        chance = None
        if "n_audio" in metrics:
            from lasr.tasks.retrieval import chance_levels

            chance = chance_levels(int(metrics["n_audio"]))
        unit = getattr(self.model, "metric_unit", "%")
        print("\n" + format_results(metrics, chance, title=f"== {title} ==", unit=unit), flush=True)


def newer_hpc_checkpoint(trainer: L.Trainer) -> str | None:
    """The newest ``hpc_ckpt_<n>.ckpt`` in ``trainer.default_root_dir`` when it is newer than every ``last*.ckpt``
    of the checkpoint callbacks, else None.

    Lightning's SLURM requeue handler writes that file on the requeue signal, but resumes from it only when no
    ckpt_path is given; ``--ckpt_path last`` (the same command line for the first run and every requeued one)
    looks at last*.ckpt only, which is older when the job was killed before its SIGTERM checkpoint was written.
    """
    hpc = list(Path(trainer.default_root_dir).glob("hpc_ckpt_*.ckpt"))
    if not hpc:
        return None
    newest = max(hpc, key=lambda path: path.stat().st_mtime)
    lasts = [path for callback in trainer.checkpoint_callbacks if getattr(callback, "dirpath", None)
             for path in Path(callback.dirpath).glob("last*.ckpt")]
    if any(path.stat().st_mtime >= newest.stat().st_mtime for path in lasts):
        return None
    return str(newest)


def run_lightning(argv: list[str]) -> int:
    """Run ``lasr fit|validate|test|predict``; errors go through :func:`lasr.cli.main`'s one error path."""
    # LightningCLI reads sys.argv itself (and warns when also given args), so present argv as sys.argv.
    # sys.argv[0] stays: Lightning's DDP launcher re-executes it (or `python -m <main module>`) for ranks > 0
    saved, sys.argv = sys.argv, [sys.argv[0], *expand_overlays(argv)]
    try:
        LasrCLI()
    finally:
        sys.argv = saved
    return 0
