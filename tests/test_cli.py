"""The `lasr` command end to end: help, config printing and validation, and a short fit + test on demo data."""

from pathlib import Path

import pytest
import yaml

from lasr.cli import main

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = str(REPO / "configs" / "demo" / "stage1_demo.yaml")


def test_help_lists_training_and_tool_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("fit", "validate", "test", "predict", "data"):
        assert f"  {name} " in out


def test_unknown_command_fails(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


@pytest.mark.parametrize("config", sorted(str(p) for p in (REPO / "configs").glob("stage*.yaml")) + [DEMO_CONFIG])
def test_configs_parse_and_print(config, capsys):
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", config, "--print_config"])
    assert info.value.code == 0
    printed = capsys.readouterr().out
    assert "class_path: lasr.tasks." in printed and "AudioTextDataModule" in printed  # stage 1, 2 or 3 task


def test_unknown_config_key_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "configs" / "demo" / "stage1_demo.yaml").read_text().replace("batch_size: 32", "batch_sise: 32"))
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", str(bad), "--print_config"])
    assert info.value.code != 0
    assert "batch_sise" in capsys.readouterr().err


def _tiny_config(demo: Path, root: Path) -> list[str]:
    """The demo config made tiny and pointed at the fixture corpus and a temporary output folder."""
    config = yaml.safe_load(Path(DEMO_CONFIG).read_text())
    trainer = config["trainer"]
    trainer.update(max_epochs=2, limit_train_batches=3, default_root_dir=str(root))
    trainer["logger"]["init_args"]["save_dir"] = str(root / "logs")
    for callback in trainer["callbacks"][:2]:  # best and last checkpoints
        callback["init_args"]["dirpath"] = str(root / "ckpt")
    model = config["model"]["init_args"]["model"]["init_args"]
    model["embed_dim"] = 32
    model["audio_encoder"]["init_args"]["channels"] = [8, 16]
    data = config["data"]["init_args"]
    manifests = demo / "manifests"
    data.update(
        train=[{"path": str(manifests / "clotho_development.jsonl.gz")}],
        val=[{"path": str(manifests / "clotho_validation.jsonl.gz")}],
        test=[{"path": str(manifests / "clotho_evaluation.jsonl.gz")}],
        test_relevance=str(demo / "clotho" / "metadata_eval.csv"), batch_size=8, num_workers=0)
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return ["--config", str(path)]


@pytest.mark.slow
def test_fit_then_test_best_checkpoint_through_the_cli(demo_corpus, tmp_path, capsys):
    assert main(["fit", *_tiny_config(demo_corpus, tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "== test (best checkpoint" in out
    for metric in ("t2a/R@1", "t2a/mAP@10", "a2t/R@10", "t2a_multi/mAP@16"):
        assert metric in out
    best = sorted((tmp_path / "ckpt").glob("best-*.ckpt"))
    assert len(best) == 1 and (tmp_path / "ckpt" / "last.ckpt").is_file()
    assert list((tmp_path / "logs").rglob("events.out.tfevents.*"))
    assert main(["test", *_tiny_config(demo_corpus, tmp_path), "--ckpt_path", str(best[0])]) == 0
    assert "t2a_multi/mAP@16" in capsys.readouterr().out
