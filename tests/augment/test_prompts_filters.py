"""Templates (load, render, missing placeholders), request hashing, answer parsing and filters."""

from __future__ import annotations

import pytest

from lasr.augment.filters import judge, normalise, parse_answer, rejection_reason
from lasr.augment.prompts import TEMPLATE_DIR, Template, TemplateError
from lasr.augment.requests import Sampling, make_request

ALL = sorted(p.stem for p in TEMPLATE_DIR.glob("*.yaml"))
FIELDS = {"source": "a dog barks", "other": "rain falls", "language": "German", "label_kind": "recording",
          "description": "sharp barking"}


@pytest.mark.parametrize("name", ALL)
def test_every_packaged_template_renders_without_leftover_braces(name):
    template = Template.load(name)
    prompt = template.render(**{k: FIELDS[k] for k in template.required_fields()})
    text = prompt.completion_text()
    assert "{" not in text and "}" not in text
    assert text.endswith(f"{prompt.output_label}:")
    messages = prompt.chat_messages()
    assert messages[0]["role"] == "system" and messages[-1]["role"] == "user"
    assert len(messages) == 2 + 2 * len(prompt.examples)


def test_missing_placeholder_is_named():
    with pytest.raises(TemplateError, match=r"\['other'\]"):
        Template.load("mix").render(source="a dog barks")
    with pytest.raises(TemplateError, match="Klingon"):
        Template.load("translate_to_pivot").render(source="x", language="Klingon")


def test_custom_id_depends_on_every_key_part():
    template = Template.load("paraphrase")
    base = dict(kind="paraphrase", stage="paraphrase", model="m", template=template,
                fields={"source": "a dog barks"}, sampling=Sampling(), sample_index=0)
    ids = {make_request(**base).custom_id,
           make_request(**{**base, "model": "m2"}).custom_id,
           make_request(**{**base, "fields": {"source": "a cat meows"}}).custom_id,
           make_request(**{**base, "sampling": Sampling(temperature=0.1)}).custom_id,
           make_request(**{**base, "sampling": Sampling(seed=1)}).custom_id,
           make_request(**{**base, "sample_index": 1}).custom_id}
    assert len(ids) == 6
    assert make_request(**base).custom_id == make_request(**base).custom_id  # stable across calls


def test_parse_answer_strips_labels_markers_and_extra_lines():
    assert parse_answer(' Paraphrase: "A dog barks loudly."\nCaption: next one') == ("A dog barks loudly.", False)
    assert parse_answer("<start_of_turn>model\nA dog barks.<end_of_turn>")[0] == "A dog barks."
    assert parse_answer("<end_of_turn>") == ("", True)


@pytest.mark.parametrize("text, finish, expected", [
    ("A hound yaps twice outside.", "stop", None),
    ("A hound yaps twice outside.", "length", "truncated"),
    ("", "stop", "empty"),
    ("Sure, here is the rewritten caption: a dog", "stop", "refusal"),
    ("As an AI language model I cannot do that", "stop", "refusal"),
    ("dog", "stop", "too_short"),
    (" ".join(["word"] * 31), "stop", "too_long"),
    ("A dog barks twice, outside!", "stop", "identical"),
    ("Ein Hund bellt zweimal draußen im Hof.", "stop", "wrong_language"),
    ("A {source} barks loudly here", "stop", "malformed"),
])
def test_rejection_reasons(text, finish, expected):
    assert rejection_reason(text, source="a dog barks twice outside", finish_reason=finish) == expected


def test_banned_words_and_prompt_echo():
    assert rejection_reason("church bells toll as the sound fades", source="bells", finish_reason="stop",
                            banned_words=("sound", "heard")) == "banned_word"
    assert rejection_reason("Two barks ring out as cars pass.", source="x y z", finish_reason="stop",
                            echo_texts=["Two barks ring out as cars pass"]) == "prompt_echo"
    near_echo = "Loud, sharp barks, sometimes with a growl."  # few-shot answer with words dropped
    assert rejection_reason(near_echo, source="beep train", finish_reason="stop",
                            echo_texts=["Loud, sharp barks in short bursts, sometimes with a growl."]) == "prompt_echo"
    assert rejection_reason("A train horn beeps in short bursts.", source="beep train", finish_reason="stop",
                            echo_texts=["Loud, sharp barks in short bursts, sometimes with a growl."]) is None


def test_judge_rejects_an_echo_of_a_few_shot_output():
    request = make_request(kind="paraphrase", stage="paraphrase", model="m", template=Template.load("paraphrase"),
                           fields={"source": "a cat meows"}, sampling=Sampling(), sample_index=0)
    echo = request.prompt.examples[0][1]
    assert judge(echo, "stop", request) == (echo, "prompt_echo")
    assert judge("Paraphrase: a small cat mews softly", "stop", request) == ("a small cat mews softly", None)
    assert normalise("A  Dog, barks!") == "a dog barks"


def test_fidelity_band_with_minilm():
    from collections import Counter

    from lasr.augment.export import apply_fidelity

    def row(source, text):
        return {"kind": "paraphrase", "source": source, "text": text, "extra": {}}

    rows = [row("a dog barks loudly in a yard", "a dog is barking noisily in the yard"),
            row("a dog barks loudly in a yard", "the stock market closed higher on friday"),
            row("a dog barks loudly in a yard", "a dog barks loudly in a yard."),
            {"kind": "mix", "source": "x", "text": "y", "extra": {}}]
    counts = Counter(paraphrase=3, mix=1)
    kept = apply_fidelity(rows, (0.5, 0.97), counts)
    assert [r["text"] for r in kept] == ["a dog is barking noisily in the yard", "y"]
    assert counts["fidelity_low"] == 1 and counts["fidelity_high"] == 1 and counts["paraphrase"] == 1
    assert kept[0]["extra"]["fidelity"] > 0.5
