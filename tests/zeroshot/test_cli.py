"""`lasr zeroshot` end to end with a tiny untrained checkpoint (plumbing and outputs, not accuracy)."""

from __future__ import annotations

import json

import pytest

from lasr.cli import main


@pytest.mark.parametrize("source", ["folder", "manifest"])
def test_zeroshot_template_and_prompt_file(demo_corpus, tiny_checkpoints, tmp_path, capsys, source):
    ckpt, _ = tiny_checkpoints
    data = demo_corpus / "esc50" if source == "folder" else demo_corpus / "manifests" / "esc50.jsonl.gz"
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("label,prompt\npure_tone,A steady whistle.\npure tone,A flat beep that never changes.\n"
                       "siren,A wailing alarm rises and falls.\n")
    out = tmp_path / "results"
    code = main(["zeroshot", "--ckpt", str(ckpt), "--data", str(data), "--prompts", str(prompts),
                 "--n-prompts", "1", "--aggregate", "max", "--seed", "1", "--max-seconds", "1", "--out", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    assert "8 label(s) missing from" in captured.err and "white_noise" in captured.err
    summary = [line for line in captured.out.splitlines() if "accuracy" in line and "chance 10.00 %" in line]
    assert [line.split()[0] for line in summary] == ["template", "prompts_n1_max_seed1"]
    result = json.loads((out / "prompts_n1_max_seed1.json").read_text())
    assert result["metric"] == "accuracy" and 0.0 <= result["overall"] <= 1.0 and result["n_clips"] > 0
    assert sorted(result["per_fold"]) == ["1", "2", "3", "4", "5"]
    assert len(result["per_class"]) == 10 and "white_noise" in result["fallback_labels"]
    used = [json.loads(line) for line in (out / "prompts_n1_max_seed1_prompts.jsonl").read_text().splitlines()]
    assert sum(u["label"] == "pure_tone" for u in used) == 1 and len(used) == 10
    assert (out / "template_confusion.png").stat().st_size > 1000


def test_zeroshot_reports_an_unknown_layout(tiny_checkpoints, tmp_path, capsys):
    assert main(["zeroshot", "--ckpt", str(tiny_checkpoints[0]), "--data", str(tmp_path)]) == 2
    assert "unknown layout" in capsys.readouterr().err
