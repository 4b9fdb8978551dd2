"""Modifier captions: truthful templates, counterfactuals that differ in exactly one respect, free-text flips."""

from __future__ import annotations

import numpy as np
import pytest

from lasr.augment.audio.modifiers import ModifierRules, Part, compose, counterfactual, flip_text, mentions

RULES = ModifierRules()
FLIP_PAIRS = {frozenset(pair) for pair in RULES.words.values()}


def word_diff(a: str, b: str) -> list[tuple[str, str]]:
    wa, wb = a.replace(",", "").replace(":", "").split(), b.replace(",", "").replace(":", "").split()
    assert len(wa) == len(wb)
    return [(x, y) for x, y in zip(wa, wb) if x != y]


def test_only_audible_changes_earn_a_modifier():
    assert RULES.modifiers_for(gain_db=1.5) == []  # near the original level: nothing to say
    assert RULES.modifiers_for(gain_db=-6.0, semitones=0.4, speed=1.05) == [("level", -1)]
    assert RULES.modifiers_for(gain_db=4.0, semitones=-3.0, speed=0.7) == [("level", 1), ("pitch", -1), ("speed", -1)]


def test_templates_compose_single_concat_and_mix():
    loud = Part("A dog barks.", [("level", 1)])
    assert compose([loud], "single", RULES) == "Loud: a dog barks."
    assert compose([loud, Part("A car passes")], "concat", RULES) == "Loud: a dog barks, then a car passes."
    assert compose([Part("TV plays"), Part("Rain falls.", [("pitch", 1)])], "mix", RULES) == \
        "TV plays while high-pitched: rain falls."
    with pytest.raises(ValueError):
        compose([loud], "stack", RULES)


@pytest.mark.parametrize("seed", range(8))
def test_counterfactual_differs_in_exactly_the_flipped_modifier(seed):
    rng = np.random.default_rng(seed)
    parts = [Part("A dog barks.", [("level", 1), ("speed", -1)]), Part("A car passes.", [("pitch", -1)])]
    positive = compose(parts, "concat", RULES)
    negative = counterfactual(parts, "concat", RULES, rng)
    (changed,) = word_diff(positive, negative)
    assert frozenset(changed) in FLIP_PAIRS
    assert parts[0].modifiers == [("level", 1), ("speed", -1)]  # the positive's parts are not mutated


def test_counterfactual_of_plain_concatenation_swaps_the_order():
    parts = [Part("A dog barks."), Part("A car passes."), Part("Rain falls.")]
    assert counterfactual(parts, "concat", RULES, None) == "Rain falls, then a car passes, then a dog barks."
    assert counterfactual([Part("Rain falls."), Part("Rain falls")], "concat", RULES, None) is None
    assert counterfactual(parts[:2], "mix", RULES, None) is None  # "A while B" reads the same both ways


def test_flip_text_changes_one_word_of_the_requested_axis():
    assert flip_text("A dog barks louder and faster.", ["level"]) == "A dog barks quieter and faster."
    assert flip_text("Loud barking.", ["level"]) == "Faint barking."
    assert flip_text("A dog barks.", ["level", "pitch", "speed"]) is None
    assert mentions("a slow-paced siren", "speed") and not mentions("a siren", "speed")
