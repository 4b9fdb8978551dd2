"""Shipped recipes: `--config NAME` lookup (a path wins), `lasr recipes list/copy`, `lasr --version`."""

import importlib.metadata
from pathlib import Path

import pytest
import yaml

from lasr import recipes
from lasr.cli import main
from lasr.cli.config_overlays import overlay_chain
from lasr.errors import LasrError

REPO = Path(__file__).resolve().parents[1]


def test_recipes_are_the_checkout_configs_when_running_from_source():
    assert recipes.recipes_dir() == REPO / "configs"
    names = recipes.recipe_names()
    assert {"stage1_pretrain.yaml", "stage2_distill.yaml", "stage3_cluster.yaml", "demo/stage1_demo.yaml",
            "pipeline/beats_stage2.yaml", "trainer/ddp.yaml", "slurm/stage1.sbatch", "lass_resunet.yaml"} <= set(names)
    assert recipes.find_recipe("configs/demo/stage1_demo.yaml") == REPO / "configs" / "demo" / "stage1_demo.yaml"
    assert recipes.find_recipe("../stage1_pretrain.yaml") is None and recipes.find_recipe("nowhere.yaml") is None


def test_an_existing_path_wins_over_a_shipped_recipe_of_that_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert overlay_chain("stage1_pretrain.yaml") == [str(REPO / "configs" / "stage1_pretrain.yaml")]
    assert "using the shipped recipe" in capsys.readouterr().err
    Path("stage1_pretrain.yaml").write_text(yaml.safe_dump({"seed_everything": 5}))
    assert overlay_chain("stage1_pretrain.yaml") == ["stage1_pretrain.yaml"]
    assert capsys.readouterr().err == ""


def test_shipped_overlay_bases_resolve_next_to_the_recipe(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    chain = overlay_chain("pipeline/beats_stage2.yaml")
    assert chain[0] == str(REPO / "configs" / "stage1_pretrain.yaml")
    assert len(chain) == 3 and "BEATsEncoder" in chain[-1]
    assert capsys.readouterr().err.count("\n") == 1  # only the name given is announced, not its bases


def test_a_copied_overlay_without_its_base_falls_back_to_the_shipped_base(tmp_path, capsys):
    own = tmp_path / "mine" / "pipeline" / "beats_stage2.yaml"
    own.parent.mkdir(parents=True)
    own.write_text((REPO / "configs" / "pipeline" / "beats_stage2.yaml").read_text())
    chain = overlay_chain(own)
    assert chain[0] == str(REPO / "configs" / "stage1_pretrain.yaml")
    assert f"{own}: config: ../stage2_distill.yaml: using the shipped recipe" in capsys.readouterr().err


def test_unknown_name_is_one_line_listing_close_matches(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LasrError, match=r"stage2_distil\.yaml: no such file .*close: stage2_distill\.yaml"):
        overlay_chain("stage2_distil.yaml")
    assert main(["fit", "--config", "demo/stage1_dem.yaml", "--print_config"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lasr fit: error: --config demo/stage1_dem.yaml")
    assert "demo/stage1_demo.yaml" in lines[0]


def test_inline_yaml_and_dash_pass_unchanged():
    assert overlay_chain("{trainer: {max_epochs: 1}}") == ["{trainer: {max_epochs: 1}}"]
    assert recipes.resolve_config("-") == recipes.Resolved("-")


def test_recipes_list_names_each_recipe_with_its_first_comment_line(capsys):
    assert main(["recipes", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(recipes.recipe_names())
    by_name = {line.split()[0]: line for line in lines}
    assert "Stage 2: fine-tune on Clotho" in by_name["stage2_distill.yaml"]
    assert "Multi-node training under SLURM" in by_name["slurm/stage1.sbatch"]  # the shebang is skipped


def test_recipes_copy_brings_the_bases_and_refuses_to_overwrite(tmp_path, capsys):
    dest = tmp_path / "exp"
    assert main(["recipes", "copy", "pipeline/beats_stage3.yaml", str(dest)]) == 0
    written = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.yaml"))
    assert written == ["pipeline/beats_stage3.yaml", "stage1_pretrain.yaml", "stage2_distill.yaml",
                       "stage3_cluster.yaml"]
    assert overlay_chain(dest / "pipeline" / "beats_stage3.yaml")[0] == str(dest / "stage1_pretrain.yaml")
    assert "shipped recipe" not in capsys.readouterr().err  # the copy is self-contained
    (dest / "stage2_distill.yaml").write_text("# edited\n")
    assert main(["recipes", "copy", "pipeline/beats_stage3.yaml", str(dest)]) == 2
    assert "not overwriting" in capsys.readouterr().err and (dest / "stage2_distill.yaml").read_text() == "# edited\n"
    assert main(["recipes", "copy", "pipeline/beats_stage3.yaml", str(dest), "--force"]) == 0
    assert (dest / "stage2_distill.yaml").read_text() == (REPO / "configs" / "stage2_distill.yaml").read_text()
    assert main(["recipes", "copy", "stage9.yaml", str(dest)]) == 2
    assert "recipe stage9.yaml: no such file" in capsys.readouterr().err


def test_version_and_help_map(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"lasr {importlib.metadata.version('lasr')}"
    assert main(["--help"]) == 0
    assert "  recipes " in capsys.readouterr().out
