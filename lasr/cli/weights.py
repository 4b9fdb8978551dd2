"""``lasr weights list|check|download``: the pretrained weights of the shipped recipes (lasr.models.weights)."""

from __future__ import annotations

import argparse

from lasr.cli.config_overlays import config_file
from lasr.errors import LasrError
from lasr.models.weights import REGISTRY, check_entry, local_path, resolve_weights, weights_dir
from lasr.models.download import download


def _size(value: int | None) -> str:
    return "?" if value is None else f"{value / 1e6:,.0f} MB"


def list_weights() -> list[str]:
    """One block per registry entry: name, presence, size, checksum, source, config key, users."""
    lines = [f"weights directory: {weights_dir()} (set LASR_WEIGHTS to change it)", ""]
    for entry in REGISTRY.values():
        present = "present" if local_path(entry).exists() else "missing"
        checksum = "sha256 published" if all(f.sha256 for f in entry.files) else "no published checksum"
        verified = "" if entry.verified else " [URL not verified against the authors' own page]"
        lines.append(f"{entry.name:<28} {present:<8} {_size(entry.size):>9}  {checksum}{verified}")
        lines.append(f"    {entry.description}")
        lines.append(f"    file:    {local_path(entry)}")
        lines.append(f"    from:    {entry.source}")
        for remote in entry.files:
            lines.append(f"             {remote.url}")
        lines.append(f"    key:     {entry.config_key}   used by {entry.used_by}")
        if entry.notes:
            lines.append(f"    note:    {entry.notes}")
    return lines


def check_weights(names: list[str]) -> tuple[list[str], bool]:
    """(report lines, all fine) for the named entries, or for every present entry when ``names`` is empty."""
    entries = [_entry(n) for n in names] if names else [e for e in REGISTRY.values() if local_path(e).exists()]
    if not entries:
        return [f"no registry weights present in {weights_dir()}"], True
    lines, ok = [], True
    for entry in entries:
        result = check_entry(entry)
        ok &= result.present and not result.problems
        status = "ok" if result.present and not result.problems else "PROBLEM"
        lines.append(f"{entry.name:<28} {status}  {result.path}")
        lines += [f"    {problem}" for problem in result.problems]
    return lines, ok


def download_weights(name: str, mirror: str | None = None, progress: bool = True) -> list[str]:
    """Download every file of entry ``name`` (``mirror`` replaces the URL of a single-file entry), then check it."""
    entry = _entry(name)
    if mirror and len(entry.files) != 1:
        raise LasrError(f"--url works for single-file entries; {name} has {len(entry.files)} files")
    target = local_path(entry)
    for remote in entry.files:
        path = target / remote.name if entry.is_folder else target
        if path.is_file() and (remote.size is None or path.stat().st_size == remote.size):
            continue  # complete (downloads are renamed into place only when complete)
        download(mirror or remote.url, path, sha256=remote.sha256, size=remote.size, progress=progress)
    result = check_entry(entry)
    if result.problems:
        raise LasrError(f"{name} downloaded to {target} but does not check out: {'; '.join(result.problems)}")
    return [f"{name}: {target}"]


def import_baseline(source: str, out: str, config: str) -> list[str]:
    """Convert the DCASE 2025 baseline checkpoint into a lasr checkpoint for ``lasr test --ckpt_path``.

    The model is built from ``config`` (PaSST-S + RoBERTa-large; no pretrained file is read: all weights come
    from ``source``) and loaded strictly; the output carries ``config``'s model and data sections.
    """
    import torch
    import yaml

    from lasr.models.checkpoints import read_checkpoint
    from lasr.models.baseline_checkpoint import baseline_state_dict, lightning_checkpoint, load_baseline_state
    from lasr.models.weights import without_pretrained_files
    from lasr.models.run_config import build_dual_encoder, read_run_config
    from lasr.utils.atomic import atomic_path

    source = resolve_weights(source)
    hint = "`lasr weights download dcase2025-t6-baseline` (docs/pipeline.md)"
    state = baseline_state_dict(read_checkpoint(source, "DCASE 2025 baseline checkpoint", hint, trusted=False), source)
    model_section, data_args = read_run_config({}, source, config)
    model = build_dual_encoder(without_pretrained_files(model_section))
    load_baseline_state(model, state, source)
    full = yaml.safe_load(open(config, encoding="utf-8"))
    with atomic_path(out) as tmp:
        torch.save(lightning_checkpoint(model, {"model": full.get("model"), "data": full.get("data")}), tmp)
    return [f"imported {source} ({len(state)} tensors) -> {out}",
            f"test it: lasr test --config {config} --config pipeline/baseline_test.yaml --ckpt_path {out}"]


def _entry(name: str):
    if name not in REGISTRY:
        raise LasrError(f"unknown weights {name!r}; `lasr weights list` shows the names: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="every weight file a shipped recipe uses, and whether it is present")
    check = sub.add_parser("check", help="verify local files (size, checksum where published, readable)")
    check.add_argument("names", nargs="*", help="registry names (default: every present entry)")
    get = sub.add_parser("download", help="download NAME into the weights directory (resumable, atomic)")
    get.add_argument("name")
    get.add_argument("--url", help="a mirror URL to fetch a single-file entry from instead")
    get.add_argument("--no-progress", action="store_true")
    imp = sub.add_parser("import-baseline", help="convert the DCASE 2025 Task 6 baseline checkpoint to a lasr one")
    imp.add_argument("source", nargs="?", default="dcase2025-t6-baseline", help="the .ckpt (or its registry name)")
    imp.add_argument("--out", default="checkpoints/dcase2025_baseline/lasr.ckpt")
    imp.add_argument("--config", type=config_file, default="stage1_pretrain.yaml",
                     help="config of the matching lasr model (default: the shipped stage-1 recipe)")


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        print("\n".join(list_weights()))
        return 0
    if args.action == "check":
        lines, ok = check_weights(args.names)
        print("\n".join(lines))
        return 0 if ok else 1
    if args.action == "import-baseline":
        print("\n".join(import_baseline(args.source, args.out, args.config)))
        return 0
    print("\n".join(download_weights(args.name, args.url, progress=not args.no_progress)))
    return 0
