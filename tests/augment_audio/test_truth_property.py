"""Property test: every modifier word of every served caption and hard negative agrees with the audio.

Random op draws (gain, pitch, tape-style speed, crop, concatenation, two-clip mixtures) on the demo's tonal
events (pure tones and beep trains with demo captions). For each part of each item the test measures, on the
audio the dataset actually produced, pitch (spectral peak), level (active-frame RMS) and duration (active
span), and checks: each modifier word (loud/faint, high-pitched/deep, fast/slow) has the measured direction
and size; each attribute the demo caption states (loudness, pitch, duration, rate) is unchanged; each hard
negative is contradicted by the measurements. 100 % is required.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lasr.augment.audio import dataset as D
from lasr.augment.audio import transforms as T
from lasr.augment.audio.dataset import AudioAugmentConfig, AugmentedPairDataset
from lasr.augment.audio.modifiers import ModifierRules, _clean
from lasr.data.datasets import clip_key
from lasr.data.demo.captions import make_captions
from lasr.data.demo.events import SYNTHS, ClipPlan, _sample_event, _scale_to_level
from lasr.data.manifest import ClipRecord

RATE = 16000
DRAWS = int(__import__("os").environ.get("LASR_TRUTH_DRAWS", 2000))
RULES = ModifierRules()
WORDS = {word: (axis, -1 if i == 0 else 1) for axis, pair in RULES.words.items() for i, word in enumerate(pair)}
FFT = 1 << 16
SMEAR_S = 0.05  # a pitch shift's phase vocoder (32 ms window) blurs each edge of an event by up to ~20 ms


def _frames(wave: np.ndarray, frame: int) -> np.ndarray:
    padded = np.pad(wave, (0, (-wave.size) % frame))
    return np.sqrt((padded.reshape(-1, frame) ** 2).mean(axis=1))


def measure(wave: np.ndarray) -> tuple[float, float, float]:
    """(peak frequency Hz, active-frame RMS dB, active duration s) of a mono wave."""
    frame = int(0.005 * RATE)
    rms = _frames(wave, frame)
    on = np.nonzero(rms >= rms.max() * 10 ** (-20 / 20))[0]
    start, end = on[0] * frame, (on[-1] + 1) * frame
    loud = rms[rms >= rms.max() * 10 ** (-30 / 20)]  # level: active frames, as the dataset defines them
    segment = wave[start:end]
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(segment.size), FFT))
    return float(spectrum.argmax()) * RATE / FFT, 20 * np.log10(np.sqrt((loud ** 2).mean())), (end - start) / RATE


def tonal_corpus(count: int = 16, seed: int = 7) -> tuple[list[ClipRecord], dict[str, np.ndarray], dict]:
    """Short single-event demo clips (pure tones and beep trains) with demo captions; silent background so
    durations can be measured. Returns records, waves by path and caption mentions by (path, caption)."""
    rng = np.random.default_rng(seed)
    records, waves, mentions, used = [], {}, {}, set()
    for i in range(count):
        event = _sample_event(rng, ("pure_tone", "beep_train")[i % 2], "only")
        event.duration = 0.35 + 0.2 * event.duration  # short signals keep the test fast; "long" stays longer
        event.onset = 0.1
        length = round(event.duration + 0.2, 2)
        plan = ClipPlan(f"tone_{i}.wav", length, "single", [event], -120.0)
        wave = np.zeros(int(round(length * RATE)))
        start, n = int(0.1 * RATE), int(round(event.duration * RATE))
        wave[start:start + n] = _scale_to_level(SYNTHS[event.type](rng, event, n, RATE), event.level_db, RATE)
        captions = make_captions(plan, rng, used)
        path = f"/virtual/{plan.file_name}"
        records.append(ClipRecord(id=plan.file_name, audio_path=path, duration=length, sample_rate=RATE,
                                  captions=tuple(c["text"] for c in captions), dataset="demo-tones",
                                  num_frames=wave.size, channels=1))
        waves[path] = wave.astype(np.float32)
        for c in captions:
            mentions[(path, c["text"])] = c["mentions"][0]["attributes"]
    return records, waves, mentions


def parse(text: str, captions: list[str]) -> list[list[tuple[str, int]]] | None:
    """Modifier words before each part caption, in order; None when the parts are not in this order."""
    cursor, out = 0, []
    lowered = text.lower()
    for caption in captions:
        at = lowered.find(_clean(caption).lower(), cursor)
        if at < 0:
            return None
        prefix = lowered[cursor:at].strip(" ,.").removeprefix("then").removeprefix("while").strip(" ,")
        words = [w.strip() for w in prefix.rstrip(":").split(",") if w.strip()] if prefix.endswith(":") else []
        if prefix and not prefix.endswith(":") or any(w not in WORDS for w in words):
            return None
        out.append([WORDS[w] for w in words])
        cursor = at + len(_clean(caption))
    return out


def agrees(axis: str, direction: int, facts: dict) -> bool:
    if axis == "level":
        return direction * facts["level_db"] >= RULES.min_gain_db - 0.5
    if axis == "pitch":
        return direction * facts["semitones"] >= RULES.min_pitch_semitones - 0.3
    return facts["duration_s"] < 0 if direction > 0 else facts["duration_s"] > 0


@pytest.fixture(scope="module")
def corpus():
    return tonal_corpus()


@pytest.fixture()
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # short signals: thread start-up costs more than it saves
    yield
    torch.set_num_threads(threads)


def test_every_modifier_word_agrees_with_the_measured_audio(corpus, monkeypatch, one_thread):
    records, waves, mentioned = corpus
    config = AudioAugmentConfig(p_gain=0.5, p_pitch=0.4, p_speed=0.5, p_crop=0.4, p_concat=0.3, p_mix=0.35,
                                hard_negatives=True, min_part_seconds=0.2)
    data = AugmentedPairDataset(records, RATE, 1.5, seed=11, config=config)
    monkeypatch.setattr(AugmentedPairDataset, "_load",
                        lambda self, record, seconds, rng: torch.from_numpy(waves[record.audio_path]))
    captured: dict = {}
    real_concat, real_mix = T.concatenate, T.mix_pair

    def concat(parts, gap_samples=0):
        captured["parts"] = [p.numpy().astype(np.float64) for p in parts]
        return real_concat(parts, gap_samples)

    def mix(first, second, ratio_db, offset_fraction, max_peak=0.99):
        out, offset = real_mix(first, second, ratio_db, offset_fraction, max_peak)
        a, b = first.numpy().astype(np.float64), second.numpy().astype(np.float64)
        long_, short = (a, b) if a.size >= b.size else (b, a)
        placed = np.zeros_like(long_)
        placed[offset:offset + short.size] = short
        basis = np.stack([long_, placed] if a.size >= b.size else [placed, long_], axis=1)
        coef = np.linalg.lstsq(basis, out.numpy().astype(np.float64), rcond=None)[0]  # out = c1*a + c2*b
        captured["parts"] = [a, b]
        captured["mix_gain_db"] = 20 * np.log10(coef[0] / coef[1])  # what the mixture did to b relative to a
        return out, offset

    monkeypatch.setattr(D.T, "concatenate", concat)
    monkeypatch.setattr(D.T, "mix_pair", mix)
    by_key = {clip_key(r): r for r in records}
    checked = {"words": 0, "attributes": 0, "hard_negatives": 0, "kinds": set()}
    failures = []
    for draw in range(DRAWS):
        captured.clear()
        item = data[(draw % len(data), draw // len(data))]
        combine = item["augment"].split(":")[0] or "single"
        checked["kinds"].add(combine)
        sources = [by_key[k] for k in item["source_keys"]]
        part_caps = [next(c for c in r.captions if _clean(c).lower() in item["caption"].lower()) for r in sources]
        waves_out = captured.get("parts") if combine in ("concat", "mix") else [item["audio"].numpy()]
        facts = []
        for record, wave in zip(sources, waves_out):
            f0, level0, dur0 = measure(waves[record.audio_path].astype(np.float64))
            f1, level1, dur1 = measure(np.asarray(wave, dtype=np.float64))
            facts.append({"semitones": 12 * np.log2(f1 / f0), "level_db": level1 - level0,
                          "duration_ratio": dur1 / dur0, "duration_s": dur1 - dur0, "duration0": dur0, "level": level1,
                          "change_db": level1 - level0})
        if combine == "mix":  # level words of a mixture compare the two parts as mixed
            relative = facts[0]["level"] - facts[1]["level"] + captured["mix_gain_db"]
            facts[0]["level_db"], facts[1]["level_db"] = relative, -relative
        words = parse(item["caption"], part_caps)
        assert words is not None, item["caption"]
        for part_words, part_facts, record, caption in zip(words, facts, sources, part_caps):
            for axis, direction in part_words:
                checked["words"] += 1
                if not agrees(axis, direction, part_facts):
                    failures.append((item["caption"], axis, direction, part_facts))
            for attribute in mentioned[(record.audio_path, caption)]:  # what the demo caption itself says
                checked["attributes"] += 1
                unchanged = {"loudness": abs(part_facts["change_db"]) < 1.5 and
                             (combine != "mix" or abs(captured["mix_gain_db"]) < 0.05),
                             "pitch": abs(part_facts["semitones"]) < 0.3,
                             "duration": abs(part_facts["duration_s"]) < SMEAR_S + 0.03 * part_facts["duration0"],
                             "rate": abs(part_facts["duration_s"]) < SMEAR_S + 0.03 * part_facts["duration0"]}[attribute]
                if not unchanged:
                    failures.append((item["caption"], attribute, part_facts))
        hard = item.get("hard_negative")
        if hard is not None:
            checked["hard_negatives"] += 1
            flipped = parse(hard, part_caps)
            if flipped is not None:  # a flipped modifier: some word of it must be false
                lies = [not agrees(a, d, f) for ws, f in zip(flipped, facts) for a, d in ws]
                if not any(lies) or sum(lies) > (2 if combine == "mix" else 1):
                    failures.append(("hard negative", hard, item["caption"], facts))
            elif parse(hard, part_caps[::-1]) is None or len({_clean(c) for c in part_caps}) < 2:
                failures.append(("hard negative neither flips a word nor swaps the order", hard, item["caption"]))
    assert not failures, f"{len(failures)} disagreements, first: {failures[:3]}"
    assert checked["kinds"] == {"single", "concat", "mix"}
    assert checked["words"] > DRAWS // 2 and checked["attributes"] > DRAWS and checked["hard_negatives"] > DRAWS // 3, checked
