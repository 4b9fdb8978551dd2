"""Demo captions: a small grammar that tells the truth about a clip plan, and the relevance it implies."""

from __future__ import annotations

from typing import Any

import numpy as np

from lasr.data.demo.events import ATTRIBUTE_ORDER, ClipPlan

CAPTIONS_PER_CLIP = 5


# --------------------------------------------------------------------------------------------------------------
# Captions.  A caption mentions every event's type (by a synonym) and a random subset of its attributes; the
# mentions are kept so that relevance ("does this caption describe that clip?") is decided exactly.
# --------------------------------------------------------------------------------------------------------------
NOUNS = {
    "pure_tone": ("pure tone", "steady tone", "constant tone", "sine tone", "clean electronic tone"),
    "harmonic_buzz": ("harmonic buzz", "buzzing tone", "reedy drone", "buzzy electric drone", "raspy buzzing note"),
    "rising_chirp": ("rising chirp", "upward sweep", "rising whistle", "ascending chirp", "rising sweep tone"),
    "falling_chirp": ("falling chirp", "downward sweep", "falling whistle", "descending chirp", "falling sweep tone"),
    "white_noise": ("white noise", "burst of white noise", "static hiss", "hissing noise", "harsh hiss"),
    "pink_noise": ("pink noise", "burst of pink noise", "dull roar", "rumbling rush of noise", "whooshing roar"),
    "click_train": ("click train", "series of clicks", "train of sharp clicks", "clicking sound", "ticking sound"),
    "beep_train": ("beep train", "series of beeps", "beeping sound", "repeated electronic beep", "pulsing beep"),
    "siren": ("siren", "warbling siren", "wailing alarm", "siren-like tone", "wavering alarm tone"),
    "knocking": ("knocking sound", "series of knocks", "dull thumping", "muffled knocking", "sequence of heavy thumps"),
}
VERBS = {
    "pure_tone": ("hums steadily", "rings out", "sounds without changing", "holds a single note"),
    "harmonic_buzz": ("buzzes", "drones on", "rasps steadily", "hums harshly"),
    "rising_chirp": ("rises in pitch", "sweeps upward", "climbs higher", "glides up"),
    "falling_chirp": ("falls in pitch", "sweeps downward", "drops lower", "glides down"),
    "white_noise": ("hisses", "sizzles", "rushes like static"),
    "pink_noise": ("roars", "rumbles", "whooshes", "rushes like a waterfall"),
    "click_train": ("ticks away", "keeps clicking", "taps out a rhythm", "repeats"),
    "beep_train": ("beeps repeatedly", "keeps beeping", "pulses on and off", "bleeps again and again"),
    "siren": ("wails", "warbles", "wavers up and down", "oscillates in pitch"),
    "knocking": ("knocks", "thumps", "pounds", "keeps knocking"),
}
ADJECTIVES = {
    "loudness": {"loud": ("loud", "strong", "powerful", "intense"), "quiet": ("quiet", "soft", "faint", "gentle")},
    "duration": {"short": ("short", "brief", "momentary"), "long": ("long", "sustained", "lengthy", "prolonged")},
    "pitch": {"low": ("low", "deep", "low-pitched"), "high": ("high", "shrill", "high-pitched")},
    "rate": {"fast": ("rapid", "fast", "fast-paced"), "slow": ("slow", "leisurely", "slow-paced")},
}
ADVERBS = {
    "loudness": {"loud": ("loudly", "at high volume"), "quiet": ("quietly", "softly", "faintly", "at low volume")},
    "duration": {"short": ("briefly", "for just a moment"), "long": ("for a long time", "for several seconds")},
    "pitch": {"low": ("at a low pitch", "in a low register"), "high": ("at a high pitch", "in a high register")},
    "rate": {"fast": ("rapidly", "quickly", "in quick succession"), "slow": ("slowly", "at a slow pace")},
}
PLACES = ("in an empty room", "in this short recording", "with only light room ambience",
          "while nothing else happens")
# {A}/{B}: noun phrases, {VA}/{VB}: verb phrases of the events in role order (see ROLES), {P}: a place phrase.
TEMPLATES = {
    "single": (
        "{A} {VA} somewhere in the room, with nothing else going on.",
        "There is {A} that {VA} {P}.",
        "{A} can be heard {P}.",
        "In this recording, {A} {VA} against light ambience.",
        "{A} {VA} and then stops, leaving only light room ambience.",
        "The only sound in the clip is {A} that {VA}.",
        "A speaker plays {A} {P}.",
        "Someone is playing {A} in an empty room.",
    ),
    "sequence": (
        "{A} {VA}, then {B} {VB}.",
        "First {A} {VA}, and then {B} {VB}.",
        "{A} is followed a moment later by {B}.",
        "After {A} {VA}, {B} {VB}.",
        "{A} {VA} before {B} {VB}.",
        "{A} comes first, and {B} follows after a short pause.",
        "{B} {VB} right after {A} {VA}.",
        "The clip starts with {A} and ends with {B}.",
    ),
    "overlap": (
        "{A} {VA} while {B} {VB} in the background.",
        "While {B} {VB} in the background, {A} {VA}.",
        "{A} {VA} over {B} that continues throughout.",
        "Throughout the clip {B} {VB}, and partway through {A} {VA}.",
        "{B} {VB} continuously as {A} {VA} on top of it.",
        "{A} can be heard on top of {B} in the background.",
        "In the background {B} {VB} the whole time, while {A} {VA}.",
    ),
}
ROLES = {"single": ("only",), "sequence": ("first", "second"), "overlap": ("foreground", "background")}
CAPTION_WORDS = (8, 20)
MENTION_PROBABILITY = 0.5
ADVERB_PROBABILITY = 0.4
MAX_CAPTION_TRIES = 300


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _event_phrases(rng: np.random.Generator, event_type: str, mentioned: dict[str, str],
                   has_verb: bool) -> tuple[str, str]:
    """Noun phrase with article (``a loud siren``) and verb phrase (``wails rapidly``) for one event."""
    adjectives, adverbs = [], []
    for name in ATTRIBUTE_ORDER:
        if name not in mentioned:
            continue
        if has_verb and not adverbs and rng.random() < ADVERB_PROBABILITY:  # one adverb reads best
            adverbs.append(_pick(rng, ADVERBS[name][mentioned[name]]))
        else:
            adjectives.append(_pick(rng, ADJECTIVES[name][mentioned[name]]))
    words = " ".join(adjectives + [_pick(rng, NOUNS[event_type])])
    article = "an" if words[0] in "aeiou" else "a"
    verb = " ".join([_pick(rng, VERBS[event_type])] + adverbs)
    return f"{article} {words}", verb


def _mentions(rng: np.random.Generator, plan: ClipPlan) -> list[dict[str, Any]]:
    """Per event (in role order): its role, type and a random subset of its true attributes."""
    by_role = {ev.role: ev for ev in plan.events}
    out = []
    for role in ROLES[plan.structure]:
        ev = by_role[role]
        said = {k: v for k, v in ev.attributes.items() if rng.random() < MENTION_PROBABILITY}
        out.append({"role": role, "type": ev.type, "attributes": said})
    return out


def _render(template: str, mentions: list[dict[str, Any]], rng: np.random.Generator) -> str:
    slots: dict[str, str] = {"P": _pick(rng, PLACES)}
    for letter, mention in zip("AB", mentions):
        has_verb = "{V" + letter + "}" in template
        slots[letter], slots["V" + letter] = _event_phrases(rng, mention["type"], mention["attributes"], has_verb)
    text = template.format(**slots)
    return text[0].upper() + text[1:]


def make_captions(plan: ClipPlan, rng: np.random.Generator, used: set[str],
                  count: int = CAPTIONS_PER_CLIP) -> list[dict[str, Any]]:
    """``count`` captions from distinct templates, each unique within ``used`` (updated in place).

    Returns:
        list of ``{"text": str, "mentions": [{"role", "type", "attributes"}]}``.
    """
    templates = TEMPLATES[plan.structure]
    order = [templates[i] for i in rng.permutation(len(templates))]
    captions: list[dict[str, Any]] = []
    for attempt in range(MAX_CAPTION_TRIES):
        if len(captions) == count:
            break
        template = order[len(captions) % len(order)] if attempt < MAX_CAPTION_TRIES // 2 else _pick(rng, templates)
        mentions = _mentions(rng, plan)
        text = _render(template, mentions, rng)
        n_words = len(text.split())
        if text in used or not CAPTION_WORDS[0] <= n_words <= CAPTION_WORDS[1]:
            continue
        used.add(text)
        captions.append({"text": text, "mentions": mentions})
    if len(captions) < count:
        raise RuntimeError(f"could not write {count} distinct captions for {plan.file_name}")  # grammar too small
    return captions


def describes(mentions: list[dict[str, Any]], clip: dict[str, Any]) -> bool:
    """Whether a caption's ``mentions`` are all true of ``clip`` (a ``demo_metadata.json`` clip entry).

    True when the clip has the same structure (the same roles), each mentioned role holds an event of the
    mentioned type, and every mentioned attribute has the mentioned value.
    """
    by_role = {ev["role"]: ev for ev in clip["events"]}
    if set(by_role) != {m["role"] for m in mentions}:
        return False
    for mention in mentions:
        event = by_role[mention["role"]]
        if event["type"] != mention["type"]:
            return False
        if any(event["attributes"].get(k) != v for k, v in mention["attributes"].items()):
            return False
    return True


def relevance(clips: list[dict[str, Any]], rng: np.random.Generator) -> list[tuple[str, list[str]]]:
    """One query per clip (a random one of its captions) and every clip that query truthfully describes.

    Returns:
        ``[(query, [own_file, other_file, ...]), ...]`` with the query's own clip first, others by name.
    """
    rows = []
    for clip in clips:
        caption = clip["captions"][int(rng.integers(len(clip["captions"])))]
        others = sorted(c["file_name"] for c in clips
                        if c is not clip and describes(caption["mentions"], c))
        rows.append((caption["text"], [clip["file_name"]] + others))
    return rows
