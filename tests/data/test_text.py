"""Caption text functions: the text encoder's cleaning is the baseline's; identity keys are for comparisons only."""

from lasr.data.text import caption_identity_key, clean_for_text_encoder


def test_text_encoder_cleaning_is_the_baselines():
    # baseline: caption.lower().translate(str.maketrans('', '', string.punctuation)); whitespace untouched
    caption = "A train coming down the track with cars passing by on the side of it, "
    assert clean_for_text_encoder(caption) == "a train coming down the track with cars passing by on the side of it "
    assert clean_for_text_encoder("Rain-drops fall; a dog's bark.") == "raindrops fall a dogs bark"
    assert clean_for_text_encoder("A Dog.", lowercase=False) == "A Dog"
    assert clean_for_text_encoder("A Dog.", strip_punctuation=False) == "a dog."


def test_identity_key_ignores_case_punctuation_and_spacing():
    assert caption_identity_key("A dog  barks, loudly. ") == caption_identity_key("a dog barks loudly")
    assert caption_identity_key("rain-drops") == "rain drops"
    assert caption_identity_key("a dog barks") != caption_identity_key("a cat barks")
