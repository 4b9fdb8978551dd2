"""Every YAML file under configs/ parses against the code, so a config that no longer matches it fails CI.

Training configs go through the LightningCLI parser (``lasr fit --config ... --print_config``: types, class paths
and keys are checked, nothing is instantiated, no weights are loaded). Convention for overlays: a config meant to
be stacked on another names its base in a ``config: BASE.yaml`` key (``lasr fit`` expands it) or the stack in a
header comment, e.g.
``#   lasr fit --config configs/stage1_pretrain.yaml --config configs/trainer/ddp.yaml``; the test parses
each file together with the configs listed before it on the first such line that names it. A header
``lasr cluster --config FILE`` marks a :class:`~lasr.distill.clusters.ClusterConfig` file instead.
"""

import re
import shlex
from pathlib import Path

import pytest
import yaml

from lasr.cli import LIGHTNING_SUBCOMMANDS, main
from lasr.distill.clusters import ClusterConfig

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "configs").rglob("*.y*ml"))
COMMAND = re.compile(r"lasr\s+([a-z-]+)((?:\s+--config\s+\S+)+)")


def stack_of(config: str) -> tuple[str, list[str]]:
    """(command, config files to parse together, ``config`` last) from the file's header comments."""
    for line in (REPO / config).read_text(encoding="utf-8").splitlines():
        if not line.lstrip().startswith("#"):
            continue
        for match in COMMAND.finditer(line):
            files = [word for word in shlex.split(match.group(2).replace("`", " ")) if word != "--config"]
            if config in files:
                return match.group(1), files[: files.index(config) + 1]
    return "fit", [config]


def names_its_base(config: str) -> bool:
    """Whether the file is an overlay that names its base itself (``config: BASE.yaml``, expanded by ``lasr fit``)."""
    data = yaml.safe_load((REPO / config).read_text(encoding="utf-8"))
    return isinstance(data, dict) and "config" in data


def test_every_config_is_found_and_overlays_name_their_base():
    assert len(CONFIGS) >= 10
    assert stack_of("configs/trainer/ddp.yaml") == (
        "fit", ["configs/stage1_pretrain.yaml", "configs/trainer/ddp.yaml"])
    assert stack_of("configs/clusters.yaml") == ("cluster", ["configs/clusters.yaml"])
    assert names_its_base("configs/pipeline/beats_stage1.yaml") and names_its_base("configs/stage3_cluster.yaml")
    for overlay in (c for c in CONFIGS if c.startswith(("configs/pipeline/", "configs/trainer/"))):
        assert len(stack_of(overlay)[1]) > 1 or names_its_base(overlay), (
            f"{overlay}: overlay without a `config: BASE` key or a `lasr fit --config BASE --config` header")


@pytest.mark.parametrize("config", CONFIGS)
def test_config_parses_against_the_code(config, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    command, files = stack_of(config)
    if command == "cluster":
        assert isinstance(ClusterConfig.from_yaml(REPO / config), ClusterConfig)
        return
    assert command in LIGHTNING_SUBCOMMANDS, f"{config}: header names `lasr {command}`"
    argv = [command, *(arg for f in files for arg in ("--config", f)), "--print_config"]
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    assert info.value.code == 0, f"lasr {' '.join(argv)}:\n{captured.err[-3000:]}"
    assert "class_path:" in captured.out and "model:" in captured.out
