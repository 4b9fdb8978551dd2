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


def test_net_pitch_of_speed_and_pitch_together():
    from lasr.augment.audio.modifiers import net_semitones

    # the case: speed 1.5 with pitch -3 semitones sounds 4.0 semitones higher, not "deep"
    assert net_semitones(-3.0, 1.5) == pytest.approx(4.02, abs=0.01)
    assert RULES.modifiers_for(0.0, net_semitones(-3.0, 1.5), 1.5) == [("pitch", 1), ("speed", 1)]
    assert mentions("a leisurely ticking", "speed") and mentions("an intense hum", "level")
    assert mentions("a sustained tone", "duration")


def test_llm_modifier_descriptions_use_the_same_facts_and_guards():
    from lasr.augment.audio.modifiers import free_ops, net_semitones
    from lasr.augment.kinds import ModifierConfig, choose_modifier_examples
    from lasr.data.manifest import ClipRecord

    records = [ClipRecord(id=f"{i}.wav", audio_path="x", duration=5.0, sample_rate=16000, dataset="d",
                          captions=(text,))
               for i, text in enumerate(["A loud dog barks.", "A car passes.", "A slow bell rings.", "Rain falls."])]
    examples = choose_modifier_examples(records, 300, 0, ModifierConfig(p_op=0.6))
    seen = set()
    for example in examples:
        for clip in example["clips"]:
            caption = next(r.captions[0] for r in records if r.key == clip["clip_key"])
            assert set(clip["ops"]) <= free_ops(caption)  # no op on an axis the caption talks about
            if example["combine"] == "mix":
                assert "gain_db" not in clip["ops"]  # energy matching would undo it
            semis = net_semitones(clip["ops"].get("pitch_semitones", 0.0), clip["ops"].get("speed", 1.0))
            if abs(semis) >= 1:
                seen.add("pitch")
                word = "higher pitch" if semis > 0 else "deeper pitch"
                assert word in example["description"]
    assert "pitch" in seen
