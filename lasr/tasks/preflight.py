"""Preflight of ``lasr fit|validate|test``: everything that would stop the run later, checked before any model
is built, and reported all at once.

Checked from the parsed config (``class_path`` / ``init_args`` tree):

* every pretrained weight an encoder names exists and reads (classes declare ``PRETRAINED = {init arg: registry
  name}``, or a ``preflight_problems(init_args)`` static method); a null weight needs ``allow_random_init: true``;
* ``init_from`` checkpoints exist;
* every manifest the data section lists exists and holds at least one clip;
* every added training set (``data.added``) passes its class's ``preflight_problems(init_args)``;
* the data module's sample rate is the audio encoder's;
* the relevance file reads and resolves against the test manifests' captions (verbatim).
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any, Iterator

from lasr.data.manifest import iter_manifest, read_manifest
from lasr.errors import LasrError
from lasr.metrics.retrieval import load_relevance_csv, resolve_relevance_for_records
from lasr.models.weights import REGISTRY, call_check, how_to_get, resolve_weights

MANIFEST_KEYS = ("train", "val", "test")


class PreflightError(LasrError):
    """Every problem preflight found, one per line; ``problems`` holds them."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        if len(problems) == 1:
            super().__init__(f"preflight (before the first step): {problems[0]}")
            return
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"preflight found {len(problems)} problems before the first step; fix them all and "
                         f"run again:\n{listed}")


def _class(class_path: str) -> type | None:
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None  # jsonargparse reports unknown classes itself


def _defaults(cls: type) -> dict[str, Any]:
    try:
        parameters = inspect.signature(cls.__init__).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def class_nodes(node: Any, key: str) -> Iterator[tuple[str, type, dict[str, Any]]]:
    """(config key of ``init_args``, class, init args with the class defaults filled in) for every node."""
    if isinstance(node, dict):
        cls = _class(node["class_path"]) if isinstance(node.get("class_path"), str) else None
        if cls is not None:
            args = dict(_defaults(cls), **(node.get("init_args") or {}))
            yield f"{key}.init_args", cls, args
            for name, value in (node.get("init_args") or {}).items():
                yield from class_nodes(value, f"{key}.init_args.{name}")
        else:
            for name, value in node.items():
                yield from class_nodes(value, f"{key}.{name}" if key else name)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from class_nodes(value, f"{key}[{index}]")


def weight_problems(key: str, cls: type, args: dict[str, Any]) -> list[str]:
    """Problems with the pretrained weights one encoder node names."""
    problems = []
    hook = getattr(cls, "preflight_problems", None)
    if callable(hook):
        problems += [f"{key}: {p}" for p in hook(args)]
    for arg, registry_name in getattr(cls, "PRETRAINED", {}).items():
        value = args.get(arg)
        if value is None:
            if not args.get("allow_random_init", False):
                problems.append(
                    f"{key}.{arg}: {cls.__name__} has no pretrained weights (null). Get them with "
                    f"{how_to_get(registry_name)}, then set {arg}: {registry_name}; or set "
                    f"{key}.allow_random_init: true to start from random weights")
            continue
        path = resolve_weights(value)
        name = value if value in REGISTRY else registry_name
        if not Path(path).expanduser().exists():
            problems.append(f"{key}.{arg}: {path} not found; get it with {how_to_get(name)}")
            continue
        try:
            call_check(REGISTRY[registry_name], path)
        except LasrError as err:
            problems.append(f"{key}.{arg}: {err}")
    return problems


def _manifest_paths(data_args: dict[str, Any], split: str) -> list[str]:
    items = data_args.get(split) or []
    return [item if isinstance(item, str) else item.get("path") for item in items]


def manifest_problems(data_args: dict[str, Any]) -> list[str]:
    problems = []
    for split in MANIFEST_KEYS:
        for index, path in enumerate(_manifest_paths(data_args, split)):
            key = f"data.init_args.{split}[{index}].path"
            if not path or not Path(path).is_file():
                problems.append(f"{key}: manifest {path} not found; make it with `lasr data prepare-...` "
                                "(docs/pipeline.md, section 0)")
                continue
            try:
                empty = next(iter_manifest(path), None) is None
            except LasrError as err:
                problems.append(f"{key}: {err}")
                continue
            if empty:
                problems.append(f"{key}: manifest {path} holds no clips")
    return problems


def added_problems(data_args: dict[str, Any]) -> list[str]:
    """Problems the ``data.added`` classes find in their init args (e.g. an LLM mix table that is missing)."""
    problems = []
    for key, cls, args in class_nodes(data_args.get("added") or [], "data.init_args.added"):
        hook = getattr(cls, "preflight_problems", None)
        if callable(hook):
            problems += [f"{key}: {p}" for p in hook(args)]
    return problems


def relevance_problems(data_args: dict[str, Any]) -> list[str]:
    """The relevance file resolves against all captions and clips of the test manifests."""
    path = data_args.get("test_relevance")
    tests = _manifest_paths(data_args, "test")
    if not path:
        return []
    key = "data.init_args.test_relevance"
    if not Path(path).is_file():
        return [f"{key}: {path} not found; copy resources/metadata_eval.csv of the DCASE 2025 baseline "
                "(CPJKU/dcase2025_task6_baseline) there"]
    if not tests or not all(Path(t).is_file() for t in tests):
        return []  # reported by manifest_problems
    try:
        records = [r for t in tests for r in read_manifest(t)]
        clips = list(range(len(records)))
        text_clip = [c for c in clips for _ in records[c].captions]
        text_slot = [s for c in clips for s in range(len(records[c].captions))]
        resolve_relevance_for_records(load_relevance_csv(path), records, clips, text_clip, text_slot, path)
    except LasrError as err:
        return [f"{key}: {err} (test manifests {tests}; captions must be verbatim: prepare them again with "
                "this lasr version)"]
    return []


def sample_rate_problems(model_section: Any, data_args: dict[str, Any]) -> list[str]:
    """The data module's ``sample_rate`` equals the rate of the task's audio encoder."""
    rate = data_args.get("sample_rate")
    if rate is None:
        return []
    problems = []
    for key, cls, args in class_nodes(model_section, "model"):
        if not key.endswith("model.init_args.audio_encoder.init_args"):
            continue
        wanted = args.get("sample_rate", getattr(cls, "sample_rate", None))
        if isinstance(wanted, (int, float)) and int(wanted) != int(rate):
            problems.append(f"data.init_args.sample_rate: {rate} Hz, but {key} ({cls.__name__}) expects "
                            f"{int(wanted)} Hz; set data.init_args.sample_rate: {int(wanted)}")
    return problems


def init_from_problems(model_section: Any) -> list[str]:
    problems = []
    for key, _, args in class_nodes(model_section, "model"):
        path = args.get("init_from")
        if isinstance(path, str) and path and not Path(path).is_file():
            problems.append(f"{key}.init_from: checkpoint {path} not found (train the previous stage first)")
    return problems


def preflight_problems(config: dict[str, Any]) -> list[str]:
    """Every problem of a ``lasr fit|validate|test`` config (a plain dict with ``model`` and ``data``)."""
    model_section = config.get("model") or {}
    data = config.get("data") or {}
    data_args = dict(data.get("init_args") or {}) if isinstance(data, dict) else {}
    problems = []
    for key, cls, args in class_nodes(model_section, "model"):
        problems += weight_problems(key, cls, args)
    problems += init_from_problems(model_section)
    problems += manifest_problems(data_args)
    problems += added_problems(data_args)
    problems += sample_rate_problems(model_section, data_args)
    problems += relevance_problems(data_args)
    return problems


def run_preflight(config: dict[str, Any]) -> None:
    """Raise :class:`PreflightError` listing every problem, or return when the run can start."""
    problems = preflight_problems(config)
    if problems:
        raise PreflightError(problems)
