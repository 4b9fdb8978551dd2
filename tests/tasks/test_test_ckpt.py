"""``test_ckpt: best|last`` chooses the checkpoint tested after fit (the DCASE 2025 baseline tests the last epoch)."""

import pytest
import yaml

from lasr.cli import main

DEMO_CONFIG = "configs/demo/stage1_demo.yaml"


def test_test_ckpt_key_accepts_best_and_last_only(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--config", DEMO_CONFIG, "--test_ckpt", "last", "--print_config"])
    assert yaml.safe_load(capsys.readouterr().out)["test_ckpt"] == "last"
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", DEMO_CONFIG, "--test_ckpt", "newest", "--print_config"])
    assert info.value.code != 0
