"""Stage-2/3 configs parse into one RetrievalTask with their term lists, and every number the papers give is the
default there and in the constructors."""

import inspect
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from lasr.cli import main
from lasr.distill.clusters import ClusterConfig
from lasr.demo_chain import load_config
from lasr.tasks.terms import Contrastive, Distillation, TopicHeads

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TERMS = ["Contrastive", "Distillation", "TopicHeads"]
STAGE_CONFIGS = {"stage2_distill.yaml": TERMS[:2], "stage3_cluster.yaml": TERMS, "demo/stage2_demo.yaml": TERMS[:2],
                 "demo/stage3_demo.yaml": TERMS, "pipeline/eat_stage3.yaml": TERMS,
                 "demo/stage3_all_terms.yaml": TERMS}


def _printed(args, capsys) -> dict:
    with pytest.raises(SystemExit) as info:
        main(["fit", *args, "--print_config"])
    assert info.value.code == 0
    return yaml.safe_load(capsys.readouterr().out)


@pytest.mark.parametrize("name", sorted(STAGE_CONFIGS))
def test_stage_configs_are_one_task_with_their_terms(name, capsys):
    model = _printed(["--config", str(CONFIGS / name)], capsys)["model"]
    assert model["class_path"] == "lasr.tasks.RetrievalTask"
    assert [t["class_path"] for t in model["init_args"]["terms"]] == [f"lasr.tasks.terms.{t}" for t in STAGE_CONFIGS[name]]


def test_an_overlay_alone_equals_its_chain_given_by_hand(capsys):
    alone = _printed(["--config", str(CONFIGS / "stage3_cluster.yaml")], capsys)
    chained = _printed([f"--config={CONFIGS / n}" for n in ("stage1_pretrain.yaml", "stage2_distill.yaml",
                                                             "stage3_cluster.yaml")], capsys)
    assert alone == chained
    assert alone["model"]["init_args"]["model"]["init_args"]["text_encoder"]["init_args"]["name_or_path"] == "roberta-large"
    assert alone["trainer"]["callbacks"][0]["init_args"]["dirpath"] == "checkpoints/stage3"


def _task_args(name):
    return load_config(CONFIGS / name)["model"]["init_args"]


def _term_args(name):
    return {t["class_path"].rsplit(".", 1)[1]: t.get("init_args", {}) for t in _task_args(name)["terms"]}


def test_paper_values_are_the_defaults():
    assert inspect.signature(TopicHeads.__init__).parameters["weight"].default == 0.05    # AISTAT lambda2
    assert inspect.signature(Contrastive.__init__).parameters["weight"].default == 1.0
    assert inspect.signature(Distillation.__init__).parameters["weight"].default == 1.0
    stage2 = load_config(CONFIGS / "stage2_distill.yaml")
    args = stage2["model"]["init_args"]
    terms = _term_args("stage2_distill.yaml")
    assert (terms["Contrastive"]["weight"], terms["Distillation"]["weight"]) == (1.0, 1.0)
    assert args["optimizer"]["init_args"]["lr"] == 2.0e-05 and args["model"]["init_args"]["tau"] == 0.05
    assert (args["schedule"]["warmup_epochs"], args["schedule"]["rampdown_epochs"]) == (1, 15)
    assert stage2["trainer"]["max_epochs"] == 20 and stage2["data"]["init_args"]["batch_size"] == 64
    assert _term_args("stage3_cluster.yaml")["TopicHeads"]["weight"] == 0.05


def test_cluster_yaml_is_bertopic_defaults_with_a_random_state():
    values = yaml.safe_load((CONFIGS / "clusters.yaml").read_text())
    assert values == asdict(ClusterConfig())
    assert (values["n_neighbors"], values["n_components"], values["min_dist"], values["min_topic_size"]) == (15, 5, 0.0, 10)
    assert values["random_state"] == 42
