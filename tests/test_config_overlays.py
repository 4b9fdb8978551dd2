"""`config: BASE.yaml` overlays expand into the --config chain LightningCLI merges left to right."""

import pytest
import yaml

from lasr.errors import LasrError
from lasr.cli.config_overlays import expand_overlays, overlay_chain


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def test_bases_come_first_relative_to_the_file_naming_them(tmp_path):
    base = _write(tmp_path / "base.yaml", {"a": 1})
    _write(tmp_path / "sub" / "mid.yaml", {"config": "../base.yaml", "b": 2})
    top = _write(tmp_path / "sub" / "top.yaml", {"config": "mid.yaml", "c": 3})
    chain = overlay_chain(top)
    assert chain[0] == str(base) and [yaml.safe_load(c) for c in chain[1:]] == [{"b": 2}, {"c": 3}]
    argv = expand_overlays(["--config", str(top), "--trainer.max_epochs", "1", f"--config={base}", "--print_config"])
    assert argv == ["--config", chain[0], "--config", chain[1], "--config", chain[2], "--trainer.max_epochs", "1",
                    "--config", str(base), "--print_config"]


def test_cycles_and_missing_bases_are_clear_errors(tmp_path):
    _write(tmp_path / "a.yaml", {"config": "b.yaml"})
    _write(tmp_path / "b.yaml", {"config": "a.yaml"})
    with pytest.raises(LasrError, match="include each other"):
        overlay_chain(tmp_path / "a.yaml")
    _write(tmp_path / "c.yaml", {"config": "nowhere.yaml"})
    with pytest.raises(LasrError, match="base config not found: .*nowhere.yaml"):
        overlay_chain(tmp_path / "c.yaml")
    with pytest.raises(LasrError, match="missing.yaml: no such file and no shipped recipe of that name"):
        overlay_chain(tmp_path / "missing.yaml")
    assert overlay_chain(tmp_path / "missing.txt") == [str(tmp_path / "missing.txt")]  # LightningCLI reports it
