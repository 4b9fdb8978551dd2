"""configs/demo/stage3_all_terms.yaml: contrastive + hard negatives + distillation + topic heads in one run."""

import csv
import math
from pathlib import Path

import pytest
import yaml

from lasr.cli import main
from lasr.data.manifest import read_manifest
from lasr.demo_chain import load_config

from . import tiny

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo" / "stage3_all_terms.yaml"
LOGGED = ("train/loss/contrastive", "train/hard_negative_accuracy", "train/loss/distill", "train/loss/topics")


@pytest.mark.slow
def test_all_four_terms_train_together_and_are_logged(demo_corpus, tmp_path):
    manifests = demo_corpus / "manifests"
    dev = manifests / "clotho_development.jsonl.gz"
    config = load_config(CONFIG)
    config["trainer"].update(max_epochs=1, limit_train_batches=3, limit_val_batches=1, log_every_n_steps=1,
                             num_sanity_val_steps=0, default_root_dir=str(tmp_path),
                             logger={"class_path": "lightning.pytorch.loggers.CSVLogger",
                                     "init_args": {"save_dir": str(tmp_path / "logs"), "name": "all_terms"}})
    config["trainer"]["callbacks"][0]["init_args"]["dirpath"] = str(tmp_path / "ckpt")
    config["test_after_fit"] = False
    task = config["model"]["init_args"]
    task["model"] = tiny.model_section(embed_dim=16)
    teacher = tiny.make_checkpoint(tmp_path / "teacher" / "last.ckpt", seed=4, embed_dim=12)
    clusters = tiny.write_cluster_tables(tmp_path / "clusters", read_manifest(dev))
    contrastive, distill, topics = (term["init_args"] for term in task["terms"])
    assert contrastive["hard_negative_weight"] > 0
    distill["online_teachers"] = [{"checkpoint": str(teacher)}]
    topics["clusters"] = str(clusters)
    data = config["data"]["init_args"]
    data.update(train=[{"path": str(dev)}], val=[{"path": str(manifests / "clotho_validation.jsonl.gz")}],
                test=[{"path": str(manifests / "clotho_evaluation.jsonl.gz")}],
                test_relevance=str(demo_corpus / "clotho" / "metadata_eval.csv"), batch_size=8, num_workers=0,
                train_seconds=4.0, eval_seconds=8.0)
    data["augment"].update(p_concat=0.0, p_mix=1.0)  # every item a two-clip mixture with a counterfactual caption
    (tmp_path / "all_terms.yaml").write_text(yaml.safe_dump(config))

    assert main(["fit", "--config", str(tmp_path / "all_terms.yaml")]) == 0
    rows = list(csv.DictReader(open(next((tmp_path / "logs").rglob("metrics.csv")))))
    for name in LOGGED:
        values = [float(r[name]) for r in rows if r.get(name)]
        assert len(values) == 3 and all(math.isfinite(v) for v in values), (name, values)
    totals = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    parts = [float(r["train/loss/contrastive"]) + float(r["train/loss/distill"]) + 0.05 * float(r["train/loss/topics"])
             for r in rows if r.get("train/loss")]
    assert totals == pytest.approx(parts, rel=1e-5)
