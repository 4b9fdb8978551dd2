"""The whole chain (stage 1 -> teachers -> stage 2 -> clusters -> stage 3 -> ensemble) through the CLI.

Stage 1 is a tiny random checkpoint (training it is `lasr fit` as in tests/test_cli.py); every later step runs.
"""

import json
import os
from pathlib import Path

import pytest
import torch
import yaml

from lasr import demo_chain
from lasr.cli import main

from . import tiny


def test_deep_merge_replaces_class_path_nodes():
    base = {"a": {"b": 1, "c": {"class_path": "X", "init_args": {"p": 1}}}}
    merged = demo_chain.deep_merge(base, {"a": {"b": 2, "c": {"class_path": "Y"}}})
    assert merged == {"a": {"b": 2, "c": {"class_path": "Y"}}} and base["a"]["b"] == 1


@pytest.mark.slow
def test_demo_chain_runs_end_to_end_and_prints_one_table(demo_corpus, tmp_path, monkeypatch, capsys):
    tests_root = Path(tiny.__file__).parents[tiny.__name__.count(".")]  # makes the tiny text encoder importable
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tests_root), os.environ.get("PYTHONPATH", "")]))
    override = {
        "trainer": {"max_epochs": 1, "limit_train_batches": 2, "limit_val_batches": 1},
        "model": {"init_args": {"model": tiny.model_section(embed_dim=16)}},
        "data": {"init_args": {"batch_size": 8, "num_workers": 0, "train_seconds": 4.0, "eval_seconds": 8.0}},
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(override))
    stage1 = tiny.make_checkpoint(tmp_path / "stage1" / "last.ckpt", seed=0, embed_dim=16)  # stands in for a fit
    code = main(["demo-chain", "--demo", str(demo_corpus), "--out", str(tmp_path / "out"), "--stage1", str(stage1),
                            "--stage1-config", "-", "--override", str(tmp_path / "tiny.yaml"),
                            "--min-topic-size", "5"])
    assert code == 0
    out = capsys.readouterr().out
    table = out[out.index("== demo chain"):]
    header = table.splitlines()[1]
    for column in ("stage 1", "stage 2", "stage 3", "ensemble 1+2+3"):
        assert column in header
    assert "t2a_multi/mAP@16" in table and "t2a/R@1" in table
    root = tmp_path / "out"
    assert json.loads((root / "teachers" / "teachers.json").read_text())["n_audio"] == 24
    assert (root / "stage3" / "best.ckpt").is_file() and (root / "ensemble" / "submission.csv").is_file()
    stage3 = yaml.safe_load((root / "configs" / "stage3.yaml").read_text())["model"]["init_args"]
    assert [t["class_path"].rsplit(".", 1)[1] for t in stage3["terms"]] == ["Contrastive", "Distillation", "TopicHeads"]
    assert stage3["terms"][1]["init_args"]["teacher_embeddings"] == [str(root / "teachers")]
    assert stage3["terms"][2]["init_args"]["clusters"] == str(root / "clusters")
    state = torch.load(root / "stage3" / "best.ckpt", weights_only=False)["state_dict"]
    assert "terms.topics.heads.audio_head.weight" in state
