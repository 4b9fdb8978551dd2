"""The demo config with the augmentation block parses through the `lasr` CLI, and typos in it are caught."""

from __future__ import annotations

from pathlib import Path

import pytest

from lasr.cli import main

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo" / "stage1_audioaug.yaml"


def test_audioaug_demo_config_parses(capsys):
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", str(CONFIG), "--print_config"])
    assert info.value.code == 0
    printed = capsys.readouterr().out
    assert "AugmentedAudioTextDataModule" in printed and "hard_negative_weight: 1.0" in printed
    assert "hard_negatives: true" in printed and "normalization: batchnorm" in printed


def test_unknown_augment_key_is_rejected(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG.read_text().replace("p_pitch: 0.3", "p_pitchh: 0.3"))
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", str(bad), "--print_config"])
    assert info.value.code != 0
    assert "p_pitchh" in capsys.readouterr().err
