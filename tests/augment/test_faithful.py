"""The exact demo faithfulness check: every demo caption is faithful to its own facts, and the issue's five
Gemma changes (flipped register, loudly for softly, faint -> short, an added speaker, an added place) are caught."""

from __future__ import annotations

import numpy as np

from lasr.augment.faithful import demo_check, source_words_kept
from lasr.data.demo.captions import make_captions
from lasr.data.demo.corpus import DemoSpec
from lasr.data.demo.events import plan_clip


def test_every_demo_caption_passes_against_its_own_facts():
    rng, used = np.random.default_rng(3), set()
    for i in range(300):
        for caption in make_captions(plan_clip(rng, DemoSpec(), f"c{i}.wav"), rng, used):
            assert demo_check(caption["mentions"], caption["text"]) == [], caption


def test_the_changes_reported_in_the_issue_are_flagged():
    high_siren = [{"role": "only", "type": "siren", "attributes": {"pitch": "high"}}]
    assert demo_check(high_siren, "A siren wails in a low register.") == ["flipped pitch=low", "lost pitch=high"]
    assert "added a source" in demo_check(high_siren, "A siren wails in a high register as a man speaks.")
    soft_beeps = [{"role": "only", "type": "beep_train", "attributes": {"loudness": "quiet"}}]
    assert "flipped loudness=loud" in demo_check(soft_beeps, "A beep repeats loudly.")
    faint_tone = [{"role": "only", "type": "pure_tone", "attributes": {"loudness": "quiet"}}]
    assert demo_check(faint_tone, "A short tone sounds.") == ["added duration=short", "lost loudness=quiet"]
    whistle = [{"role": "only", "type": "rising_chirp", "attributes": {}}]
    assert "added a source" in demo_check(whistle, "A rising whistle climbs through the trees.")


def test_real_data_signal_keeps_source_words():
    assert source_words_kept("a dog barks twice in a yard", "twice, a dog barks out in the yard")
    assert not source_words_kept("a dog barks twice in a yard", "a cat meows on a sofa")
