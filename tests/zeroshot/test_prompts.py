"""Prompt tables: formats, reproducible sampling, template fallback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lasr.errors import DataError
from lasr.zeroshot.prompts import read_prompt_table, sample_prompts, template_prompts

KITCHEN20_PROMPTS = Path(__file__).parent / "data" / "kitchen20_prompts.jsonl"


def _table(n: int = 10) -> dict[str, list[str]]:
    return {"dog bark": [f"dog prompt {i}" for i in range(n)], "rain": [f"rain prompt {i}" for i in range(n)]}


def test_template_turns_underscores_into_spaces():
    prompts = template_prompts(["dog_bark", "rain"])
    assert prompts.texts == ("This is a sound of dog bark.", "This is a sound of rain.")
    assert prompts.owner == (0, 1)


def test_sampling_is_reproducible_for_a_seed_and_varies_with_it():
    first = sample_prompts(_table(), ["dog_bark", "rain"], n_prompts=2, seed=3)
    again = sample_prompts(_table(), ["dog_bark", "rain"], n_prompts=2, seed=3)
    assert first == again and len(first.of("dog_bark")) == 2 and first.owner == (0, 0, 1, 1)
    draws = {sample_prompts(_table(), ["rain"], 2, seed).texts for seed in range(8)}
    assert len(draws) > 1


def test_sample_of_a_class_ignores_row_order_and_other_classes():
    table = _table()
    shuffled = {k: list(reversed(v)) for k, v in table.items()}
    both = sample_prompts(table, ["dog_bark", "rain"], 3, seed=1)
    alone = sample_prompts(shuffled, ["rain"], 3, seed=1)
    assert both.of("rain") == alone.of("rain")


def test_all_prompts_when_fewer_than_asked_or_n_is_zero():
    assert len(sample_prompts(_table(3), ["rain"], 5).texts) == 3
    assert len(sample_prompts(_table(4), ["rain"], 0).texts) == 4


def test_missing_labels_fall_back_to_the_template_and_are_named():
    prompts = sample_prompts(_table(), ["rain", "glass_breaking"], 2, seed=0)
    assert prompts.fallback == ("glass_breaking",)
    assert prompts.of("glass_breaking") == ["This is a sound of glass breaking."]


def test_jsonl_and_csv_tables_read_the_same(tmp_path):
    rows = [("Dog_Bark", "A dog barks twice."), ("dog-bark", "A dog barks twice."), ("rain", "Rain, on a roof.")]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"label": a, "prompt": b, "extra": 1}) + "\n"
                                              for a, b in rows))
    (tmp_path / "p.csv").write_text("label,prompt\n" + "".join(f'{a},"{b}"\n' for a, b in rows))
    table = read_prompt_table(tmp_path / "p.jsonl")
    assert table == read_prompt_table(tmp_path / "p.csv")
    assert table == {"dog bark": ["A dog barks twice."], "rain": ["Rain, on a roof."]}


@pytest.mark.parametrize("content, suffix, row", [
    ('{"label": "rain"}\n', ".jsonl", 1),
    ('{"label": "rain", "prompt": "x"}\nnot json\n', ".jsonl", 2),
    ("name,prompt\nrain,x\n", ".csv", 1),
    ("label,prompt\nrain,\n", ".csv", 2),
])
def test_bad_tables_name_the_row(tmp_path, content, suffix, row):
    path = tmp_path / f"bad{suffix}"
    path.write_text(content)
    with pytest.raises(DataError, match=f"row {row}"):
        read_prompt_table(path)


def test_shipped_kitchen20_example_table():
    table = read_prompt_table(KITCHEN20_PROMPTS)
    assert len(table) == 19 and all(len(p) == 3 for p in table.values())
    assert "peel" not in table  # left out on purpose: shows the template fallback


def test_augment_export_table_is_read_directly(tmp_path):
    """`lasr augment export` rows: kind class-prompts gives prompts, class descriptions and captions are skipped."""
    rows = [
        {"kind": "class-prompts", "clip_key": "", "slot": -1, "source": "dog bark", "text": "A dog barks in a yard.",
         "extra": {"label": "dog_bark", "description": "sharp barks"}},
        {"kind": "class-description", "source": "dog bark", "text": "sharp barks", "extra": {"label": "dog_bark"}},
        {"kind": "paraphrase", "source": "rain falls", "text": "rain is falling", "extra": {}},
    ]
    (tmp_path / "export.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_prompt_table(tmp_path / "export.jsonl") == {"dog bark": ["A dog barks in a yard."]}
    header = "kind,clip_key,slot,source,text,custom_id,model,template,sample_index,extra\n"
    line = 'class-prompts,,-1,dog bark,A dog barks twice.,id1,m,t,0,"{""label"": ""dog_bark""}"\n'
    (tmp_path / "export.csv").write_text(header + line)
    assert read_prompt_table(tmp_path / "export.csv") == {"dog bark": ["A dog barks twice."]}
