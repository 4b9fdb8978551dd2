"""Stage-2/3 configs parse, and every number the papers give is the default there and in the constructors."""

import inspect
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from lasr.cli import main
from lasr.distill.clusters import ClusterConfig
from lasr.tasks.cluster import ClusterDistillTask
from lasr.tasks.distill import DistillRetrievalTask

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
STAGE_CONFIGS = {"stage2_distill.yaml": "DistillRetrievalTask", "stage3_cluster.yaml": "ClusterDistillTask",
                 "demo/stage2_demo.yaml": "DistillRetrievalTask", "demo/stage3_demo.yaml": "ClusterDistillTask"}


@pytest.mark.parametrize("name", sorted(STAGE_CONFIGS))
def test_stage_configs_parse(name, capsys):
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", str(CONFIGS / name), "--print_config"])
    assert info.value.code == 0
    module = "distill" if STAGE_CONFIGS[name] == "DistillRetrievalTask" else "cluster"
    assert f"class_path: lasr.tasks.{module}.{STAGE_CONFIGS[name]}" in capsys.readouterr().out


def _task_args(name):
    return yaml.safe_load((CONFIGS / name).read_text())["model"]["init_args"]


def test_paper_values_are_the_defaults():
    defaults = inspect.signature(ClusterDistillTask.__init__).parameters
    assert defaults["cluster_weight"].default == 0.05                       # AISTAT lambda2
    assert defaults["contrastive_weight"].default == defaults["distill_weight"].default == 1.0
    assert inspect.signature(DistillRetrievalTask.__init__).parameters["distill_weight"].default == 1.0
    stage2 = yaml.safe_load((CONFIGS / "stage2_distill.yaml").read_text())
    args = stage2["model"]["init_args"]
    assert (args["contrastive_weight"], args["distill_weight"]) == (1.0, 1.0)
    assert args["optimizer"]["init_args"]["lr"] == 2.0e-05 and args["model"]["init_args"]["tau"] == 0.05
    assert (args["schedule"]["warmup_epochs"], args["schedule"]["rampdown_epochs"]) == (1, 15)
    assert stage2["trainer"]["max_epochs"] == 20 and stage2["data"]["init_args"]["batch_size"] == 64
    assert _task_args("stage3_cluster.yaml")["cluster_weight"] == 0.05


def test_cluster_yaml_is_bertopic_defaults_with_a_random_state():
    values = yaml.safe_load((CONFIGS / "clusters.yaml").read_text())
    assert values == asdict(ClusterConfig())
    assert (values["n_neighbors"], values["n_components"], values["min_dist"], values["min_topic_size"]) == (15, 5, 0.0, 10)
    assert values["random_state"] == 42
