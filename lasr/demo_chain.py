"""The whole retrieval recipe on the demo corpus, on CPU, through the ``lasr`` CLI; prints one table.

stage 1 (the existing demo checkpoint, or trained) -> ``lasr teachers`` -> stage 2 (distillation) ->
``lasr cluster`` -> stage 3 (topic heads) -> ``lasr ensemble`` (every stage's test metrics side by side,
plus the ensemble of the three stages' models).

Run: ``lasr demo-chain`` (``make demo`` does); it makes the demo corpus first (``lasr data demo --seed 0``) when
``--demo`` has none.  The stage configs are the shipped demo recipes (``demo/*.yaml``) with their data and output
paths rewritten to ``--demo`` and ``--out``; ``--override FILE.yaml`` deep-merges extra keys into every stage's
config (a node with ``class_path`` replaces the node it lands on), which is how the tests shrink the models.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from lasr.distill.ensemble import format_table
from lasr.errors import LasrError
from lasr.models.checkpoints import weights_digest
from lasr.recipes import BASE_KEY, find_recipe

DEMO_RECIPES = "demo"  # the demo configs' folder among the shipped recipes
DEFAULT_STAGE1 = Path("checkpoints/demo/stage1/last.ckpt")  # where `lasr fit --config demo/stage1_demo.yaml` writes
CORPUS_SEED = 0  # the demo corpus `make demo` builds


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``; a dict with ``class_path`` replaces instead of merging."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and "class_path" not in value and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(path: Path) -> dict[str, Any]:
    """A config file with its overlay chain (``config: BASE.yaml``, relative to the file) merged into one dict."""
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    base = config.pop(BASE_KEY, None)
    return deep_merge(load_config(path.parent / base), config) if base else config


def demo_recipe(name: str) -> Path:
    """The shipped demo recipe ``name`` (``stage1_demo.yaml``)."""
    path = find_recipe(f"{DEMO_RECIPES}/{name}")
    if path is None:
        raise LasrError(f"the shipped recipe {DEMO_RECIPES}/{name} is missing from this lasr install")
    return path


class Chain:
    """Runs the steps as subprocesses, logging each to ``out/logs/<step>.txt``."""

    def __init__(self, demo: Path, out: Path, override: dict[str, Any] | None = None):
        self.demo, self.out, self.override = demo, out, override or {}
        self.manifests = demo / "manifests"
        self.timings: dict[str, float] = {}
        (out / "logs").mkdir(parents=True, exist_ok=True)

    def run(self, step: str, *args: str) -> None:
        started = time.perf_counter()
        print(f"[{step}] lasr {' '.join(args)}", flush=True)
        log = self.out / "logs" / f"{step}.txt"
        with open(log, "w", encoding="utf-8") as handle:  # the step's output goes to its log and to stdout
            child = subprocess.Popen([sys.executable, "-m", "lasr.cli", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"),
                                     text=True, encoding="utf-8", errors="replace")
            for line in child.stdout:
                handle.write(line)
                print(f"[{step}] {line}", end="", flush=True)
            code = child.wait()
        self.timings[step] = time.perf_counter() - started
        if code != 0:
            tail = "".join(log.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)[-40:])
            raise SystemExit(f"[{step}] failed with exit code {code}; last lines of {log}:\n{tail}")
        print(f"[{step}] done in {self.timings[step]:.0f} s", flush=True)

    def config(self, stage: str, template: str, model_args: dict[str, Any],
               term_args: dict[str, Any] | None = None) -> Path:
        """The demo config of ``stage`` with data/output paths rewritten and the overrides merged in;
        ``term_args`` replace the loss terms' init args of the same name (teacher and cluster paths)."""
        config = load_config(demo_recipe(template))
        data = config["data"]["init_args"]
        for split in ("train", "val", "test"):
            data[split] = [{"path": str(self.manifests / f"clotho_{name}.jsonl.gz")}
                           for name in [{"train": "development", "val": "validation", "test": "evaluation"}[split]]]
        data["test_relevance"] = str(self.demo / "clotho" / "metadata_eval.csv")
        trainer = config["trainer"]
        trainer["default_root_dir"] = str(self.out)
        trainer["logger"]["init_args"]["save_dir"] = str(self.out / "logs")
        for callback in trainer["callbacks"]:
            if callback["class_path"].endswith(".ModelCheckpoint"):  # best and last
                callback["init_args"]["dirpath"] = str(self.out / stage)
        config["model"]["init_args"].update(model_args)
        for term in config["model"]["init_args"].get("terms") or []:
            args = term.setdefault("init_args", {})
            args.update({k: v for k, v in (term_args or {}).items() if k in args})
        config = deep_merge(config, self.override)
        path = self.out / "configs" / f"{stage}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        shutil.rmtree(self.out / stage, ignore_errors=True)  # fresh best.ckpt / last.ckpt names
        return path

    def fit(self, stage: str, template: str, model_args: dict[str, Any], term_args: dict[str, Any] | None = None) -> None:
        self.run(stage, "fit", "--config", str(self.config(stage, template, model_args, term_args)))


def stage1(chain: Chain, existing: Path | None, existing_config: str) -> tuple[list[Path], str]:
    """(teacher checkpoints, config for them: a file, or '-' when the checkpoints carry their config)."""
    if existing is None:
        chain.fit("stage1", "stage1_demo.yaml", {})
        existing, existing_config = chain.out / "stage1" / "last.ckpt", "-"
    teachers = distinct_models([existing, *sorted(existing.parent.glob("best*.ckpt"))[:1]])
    print(f"[stage1] using {', '.join(map(str, teachers))} as stage 1 (teachers)")
    return teachers, existing_config


def distinct_models(checkpoints: list[Path]) -> list[Path]:
    """The checkpoints without those whose weights equal an earlier one's (when the best epoch is the last,
    best and last are one model: it would be counted twice in the teacher ensemble)."""
    kept, seen = [], set()
    for checkpoint in checkpoints:
        digest = weights_digest(checkpoint)
        if digest in seen:
            print(f"[stage1] {checkpoint} holds the same weights as an earlier teacher: left out")
            continue
        kept.append(checkpoint)
        seen.add(digest)
    return kept


def run_chain(demo: Path, out: Path, existing_stage1: Path | None, override: dict | None,
              min_topic_size: int = 10,
              stage1_config: str | None = None) -> dict[str, dict[str, float]]:
    """Run every step (``stage1_config``: of ``existing_stage1``, default the shipped stage-1 demo recipe; '-':
    the config stored in the checkpoint) and print the table; returns its columns."""
    chain = Chain(demo, out, override)
    stage1_config = stage1_config or str(demo_recipe("stage1_demo.yaml"))
    if not (chain.manifests / "clotho_development.jsonl.gz").is_file():
        chain.run("corpus", "data", "demo", "--out", str(demo), "--seed", str(CORPUS_SEED))
    teachers, stage1_config = stage1(chain, existing_stage1, stage1_config)
    dev = str(chain.manifests / "clotho_development.jsonl.gz")
    chain.run("teachers", "teachers", "--ckpt", *map(str, teachers), "--config", stage1_config,
              "--data", dev, "--out", str(out / "teachers"))
    paths = {"teacher_embeddings": [str(out / "teachers")], "clusters": str(out / "clusters")}
    chain.fit("stage2", "stage2_demo.yaml", {"init_from": str(teachers[0])}, paths)
    chain.run("cluster", "cluster", "--data", dev, "--out", str(out / "clusters"),
              "--min-topic-size", str(min_topic_size))
    chain.fit("stage3", "stage3_demo.yaml", {"init_from": str(out / "stage2" / "best.ckpt")}, paths)
    members = [teachers[0], out / "stage2" / "best.ckpt", out / "stage3" / "best.ckpt"]
    chain.run("ensemble", "ensemble", "--ckpt", *map(str, members), "--config", stage1_config, "-", "-",
              "--data", str(chain.manifests / "clotho_evaluation.jsonl.gz"),
              "--relevance", str(demo / "clotho" / "metadata_eval.csv"), "--out", str(out / "ensemble"))
    metrics = json.loads((out / "ensemble" / "metrics.json").read_text(encoding="utf-8"))["metrics"]
    columns = dict(zip(["stage 1", "stage 2", "stage 3", "ensemble 1+2+3"], metrics.values()))
    clusters = json.loads((out / "clusters" / "summary.json").read_text(encoding="utf-8"))
    print("\n" + format_table(columns, title=f"== demo chain: test metrics (%) on {demo / 'manifests'} "
                                             "clotho_evaluation =="))
    print(f"topics: {clusters['n_topics']} ({100 * clusters['outlier_share']:.1f}% outlier captions); step times (s): "
          + ", ".join(f"{k} {v:.0f}" for k, v in chain.timings.items()))
    return columns
