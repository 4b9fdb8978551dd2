"""Corpus recipes on tiny official-layout fixtures: happy paths, every validation failure, real shared data."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lasr.data.manifest import read_manifest
from lasr.data.recipes import (
    DataProblems,
    prepare_audiocaps,
    prepare_captioned_csv,
    prepare_clotho,
    prepare_esc50,
    prepare_wavcaps,
    read_exclusion_list,
)
from lasr.data.recipes.common import MAX_LISTED_PROBLEMS
from lasr.errors import DataError

SR = 8000  # Hz; small files keep the tests fast
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def write_wav(path: Path, seconds: float = 0.5, sample_rate: int = SR, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(seed).uniform(-0.5, 0.5, int(seconds * sample_rate)).astype("float32")
    sf.write(path, noise, sample_rate)
    return path


def write_csv(path: Path, header: list[str], rows: list[list], encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


CLOTHO_HEADER = ["file_name"] + [f"caption_{i}" for i in range(1, 6)]


def clotho_row(name: str) -> list[str]:
    return [name] + [f"{name} caption number {i}" for i in range(1, 6)]


def make_clotho(root: Path, names: dict[str, list[str]] | None = None) -> Path:
    """Clotho layout: development in clotho_audio_development/, validation in the accepted {split}/ folder."""
    names = names or {"development": ["a.wav", "b.wav", "c.wav"], "validation": ["d.wav", "e.wav"]}
    for split, files in names.items():
        folder = root / (f"clotho_audio_{split}" if split != "validation" else split)
        for k, name in enumerate(files):
            write_wav(folder / name, seconds=0.3 + 0.1 * k, seed=k)
        write_csv(root / f"clotho_captions_{split}.csv", CLOTHO_HEADER, [clotho_row(n) for n in files])
    return root


def problems_of(excinfo) -> list[str]:
    assert isinstance(excinfo.value, DataError)
    return [str(p) for p in excinfo.value.problems]


# ------------------------------------------------------------------------------------------------------ Clotho
def test_clotho_official_layout_writes_manifests(tmp_path):
    root = make_clotho(tmp_path / "clotho")
    write_csv(root / "clotho_metadata_development.csv", ["file_name", "keywords", "sound_id", "license"],
              [["a.wav", "café;bar", "123", "Attribution"], ["b.wav", "x", "456", "CC0"]], encoding="iso-8859-1")
    records, report = prepare_clotho(root, tmp_path / "out")
    assert [r.id for r in records["development"]] == ["a.wav", "b.wav", "c.wav"]
    dev = read_manifest(tmp_path / "out" / "clotho_development.jsonl.gz")
    assert dev == records["development"]
    first = dev[0]
    assert first.captions == tuple(f"a.wav caption number {i}" for i in range(1, 6))
    assert first.license == "Attribution" and first.extra == {"sound_id": "123"}
    assert dev[2].license == ""
    assert Path(first.audio_path).is_absolute() and first.sample_rate == SR and first.num_frames == int(0.3 * SR)
    assert first.dataset == "clotho" and first.split == "development"
    val = read_manifest(tmp_path / "out" / "clotho_validation.jsonl.gz")
    assert [r.id for r in val] == ["d.wav", "e.wav"]
    assert report.splits["development"].captions == 15
    assert any("3,839" in note for note in report.notes)  # subset reported as a note, not an error
    assert not (tmp_path / "out" / "clotho_evaluation.jsonl.gz").exists()


def test_clotho_extra_columns_are_ignored(tmp_path):
    root = make_clotho(tmp_path, {"evaluation": ["x.wav"]})
    write_csv(root / "clotho_captions_evaluation.csv", CLOTHO_HEADER + ["kor_1"], [clotho_row("x.wav") + ["?"]])
    records, _ = prepare_clotho(root, splits=["evaluation"])
    assert len(records["evaluation"][0].captions) == 5


def test_clotho_missing_columns_named(tmp_path):
    root = make_clotho(tmp_path, {"development": ["a.wav"]})
    write_csv(root / "clotho_captions_development.csv", ["file_name", "caption_1", "caption_2"], [["a.wav", "x", "y"]])
    with pytest.raises(DataError) as excinfo:
        prepare_clotho(root)
    message = str(excinfo.value)
    assert "clotho_captions_development.csv, row 1" in message
    assert "caption_3" in message and "caption_5" in message


def _rewrite_row(root: Path, row_index: int, mutate) -> None:
    path = root / "clotho_captions_development.csv"
    rows = list(csv.reader(open(path, encoding="utf-8", newline="")))
    mutate(rows[row_index])
    write_csv(path, rows[0], rows[1:])


def _break_audio(kind: str):
    def apply(root: Path) -> None:
        target = root / "clotho_audio_development" / "b.wav"
        if kind == "missing":
            target.unlink()
        elif kind == "corrupt":
            target.write_bytes(np.random.default_rng(0).bytes(2000))
        elif kind == "empty":
            sf.write(target, np.zeros(0, dtype="float32"), SR)
        elif kind == "short":
            write_wav(target, seconds=0.05)
    return apply


def _empty_caption(root: Path) -> None:
    _rewrite_row(root, 2, lambda row: row.__setitem__(2, "   "))


def _duplicate_id(root: Path) -> None:
    _rewrite_row(root, 3, lambda row: row.__setitem__(0, "a.wav"))


def _invalid_utf8(root: Path) -> None:
    path = root / "clotho_captions_development.csv"
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"caption number 3", b"caption \xff\xfe 3")
    path.write_bytes(b"\n".join(lines))


@pytest.mark.parametrize(
    "breaker, expected",
    [
        (_empty_caption, ["row 3", "empty caption_2"]),
        (_duplicate_id, ["row 4", "duplicate id 'a.wav'", "row 2"]),
        (_invalid_utf8, ["row 3", "invalid utf-8 byte sequence", "caption_3"]),
        (_break_audio("missing"), ["row 3", "audio file not found", "b.wav"]),
        (_break_audio("corrupt"), ["row 3", "unreadable audio", "b.wav"]),
        (_break_audio("empty"), ["row 3", "no samples", "b.wav"]),
        (_break_audio("short"), ["row 3", "shorter than the minimum 0.1 s", "b.wav"]),
    ],
    ids=["empty-caption", "duplicate-id", "invalid-utf8", "missing", "corrupt", "zero-length", "too-short"],
)
def test_clotho_validation_names_file_and_row(tmp_path, breaker, expected):
    root = make_clotho(tmp_path / "clotho", {"development": ["a.wav", "b.wav", "c.wav"]})
    breaker(root)
    with pytest.raises(DataError) as excinfo:
        prepare_clotho(root, tmp_path / "out")
    problems = problems_of(excinfo)
    assert len(problems) == 1, problems
    assert "clotho_captions_development.csv" in problems[0]
    for text in expected:
        assert text in problems[0]
    assert not (tmp_path / "out").exists()  # nothing is written when anything is wrong


def test_clotho_row_numbers_follow_multiline_captions(tmp_path):
    root = make_clotho(tmp_path, {"development": ["a.wav", "b.wav"]})
    write_csv(root / "clotho_captions_development.csv", CLOTHO_HEADER,
              [["a.wav", "two\nlines", "x", "y", "z", "w"], ["b.wav", "", "x", "y", "z", "w"]])
    with pytest.raises(DataError, match=r"row 4: empty caption_1"):
        prepare_clotho(root)


def test_clotho_collects_all_problems_in_one_error(tmp_path):
    root = make_clotho(tmp_path, {"development": ["a.wav", "b.wav", "c.wav"]})
    _empty_caption(root)
    _break_audio("corrupt")(root)
    (root / "clotho_audio_development" / "c.wav").unlink()
    with pytest.raises(DataProblems) as excinfo:
        prepare_clotho(root)
    problems = problems_of(excinfo)
    assert len(problems) == 3
    assert any("row 3: empty caption_2" in p for p in problems)
    assert any("row 3: " in p and "unreadable audio" in p for p in problems)  # probed despite its bad caption
    assert any("row 4: audio file not found" in p for p in problems)


def test_clotho_many_problems_are_truncated(tmp_path):
    names = [f"clip{i:02d}.wav" for i in range(MAX_LISTED_PROBLEMS + 5)]
    root = tmp_path
    write_csv(root / "clotho_captions_development.csv", CLOTHO_HEADER, [clotho_row(n) for n in names])
    with pytest.raises(DataProblems) as excinfo:
        prepare_clotho(root)
    assert len(excinfo.value.problems) == len(names)
    assert "and 5 more" in str(excinfo.value)
    assert str(excinfo.value).count("audio file not found") == MAX_LISTED_PROBLEMS


def test_clotho_skip_missing_reports_skipped(tmp_path):
    root = make_clotho(tmp_path, {"development": ["a.wav", "b.wav", "c.wav"]})
    (root / "clotho_audio_development" / "b.wav").unlink()
    records, report = prepare_clotho(root, skip_missing=True)
    assert [r.id for r in records["development"]] == ["a.wav", "c.wav"]
    assert len(report.splits["development"].missing) == 1
    assert any("skipped 1 clip" in line for line in report.lines())


def test_clotho_without_any_csv_is_an_error(tmp_path):
    with pytest.raises(DataError, match="clotho_captions_development.csv"):
        prepare_clotho(tmp_path)


def test_clotho_real_sample_in_cp949(tmp_path):
    root = SHARED_DATA / "clotho_sample"
    if not root.is_dir():
        pytest.skip("shared/data/clotho_sample is absent")
    records, _ = prepare_clotho(root, splits=["evaluation"], encoding="cp949", audio_dir="audio", skip_missing=True)
    clips = records["evaluation"]
    assert len(clips) == 7 and all(len(r.captions) == 5 for r in clips)
    assert all(15.0 < r.duration < 30.0 and r.sample_rate == 44100 for r in clips)


# ------------------------------------------------------------------------------------------------------ AudioCaps
AUDIOCAPS_HEADER = ["audiocap_id", "youtube_id", "start_time", "caption"]


def make_audiocaps(root: Path) -> Path:
    write_csv(root / "train.csv", AUDIOCAPS_HEADER, [[1, "abc", 30, "a dog barks"], [2, "x_y-z", 0, "rain falls"]])
    write_csv(root / "val.csv", AUDIOCAPS_HEADER, [[10 + i, "vvv", 10, f"a car passes {i}"] for i in range(5)])
    write_wav(root / "audio" / "train" / "abc_30.wav")
    write_wav(root / "audio" / "train" / "x_y-z_0.flac")
    write_wav(root / "audio" / "val" / "Yvvv.wav")
    return root


def test_audiocaps_groups_captions_and_finds_patterns(tmp_path):
    records, report = prepare_audiocaps(make_audiocaps(tmp_path), tmp_path / "out")
    train = read_manifest(tmp_path / "out" / "audiocaps_train.jsonl.gz")
    assert [r.id for r in train] == ["abc_30", "x_y-z_0"]
    assert train[1].audio_path.endswith("x_y-z_0.flac")
    (val,) = records["val"]
    assert val.id == "vvv_10" and len(val.captions) == 5 and val.audio_path.endswith("Yvvv.wav")
    assert val.extra["audiocap_ids"] == ["10", "11", "12", "13", "14"] and val.extra["start_time"] == 10.0
    assert not any("exactly 5" in note for note in report.notes)


def test_audiocaps_missing_audio_is_an_error_naming_the_row(tmp_path):
    root = make_audiocaps(tmp_path)
    (root / "audio" / "train" / "abc_30.wav").unlink()
    with pytest.raises(DataError) as excinfo:
        prepare_audiocaps(root)
    (problem,) = problems_of(excinfo)
    assert "train.csv, row 2" in problem and "abc_30.wav" in problem


def test_audiocaps_skip_missing_reports_count_and_names(tmp_path):
    root = make_audiocaps(tmp_path)
    (root / "audio" / "train" / "abc_30.wav").unlink()
    records, report = prepare_audiocaps(root, skip_missing=True)
    assert [r.id for r in records["train"]] == ["x_y-z_0"]
    lines = "\n".join(report.lines())
    assert "skipped 1 clip(s) with missing audio" in lines and "abc_30" in lines


def test_audiocaps_custom_pattern_and_folder(tmp_path):
    write_csv(tmp_path / "test.csv", AUDIOCAPS_HEADER, [[7, "qq", 20.0, "birds sing"]])
    write_wav(tmp_path / "clips" / "test-7.wav")
    records, _ = prepare_audiocaps(tmp_path, audio_dirs=["clips"], patterns=["{split}-{audiocap_id}.wav"])
    assert records["test"][0].id == "qq_20"
    with pytest.raises(DataError, match="bad audio file pattern"):
        prepare_audiocaps(tmp_path, patterns=["{video}.wav"])


def test_audiocaps_bad_rows(tmp_path):
    write_csv(tmp_path / "train.csv", AUDIOCAPS_HEADER,
              [[1, "abc", "soon", "a dog"], [2, "abd", 5, ""], [2, "abe", 5, "dup id"]])
    with pytest.raises(DataError) as excinfo:
        prepare_audiocaps(tmp_path)
    problems = problems_of(excinfo)
    assert any("row 2: start_time 'soon'" in p for p in problems)
    assert any("row 3: empty caption" in p for p in problems)
    assert any("row 4: duplicate audiocap_id '2'" in p for p in problems)


def test_audiocaps_real_demo_clips(tmp_path):
    source = SHARED_DATA / "audiocaps_demo"
    if not source.is_dir():
        pytest.skip("shared/data/audiocaps_demo is absent")
    rows = list(csv.DictReader(open(source / "captions.csv", encoding="utf-8")))
    rows = [r for r in rows if r["youtube_id"] != "YIqpIjjee00"]  # copy-pasted caption on the source page
    write_csv(tmp_path / "train.csv", AUDIOCAPS_HEADER,
              [[k, r["youtube_id"], r["start_s"], r["caption"]] for k, r in enumerate(rows)])
    records, _ = prepare_audiocaps(tmp_path, audio_dirs=[str(source / "audio")])
    assert len(records["train"]) == 12
    assert {r.sample_rate for r in records["train"]} == {22050}


# ------------------------------------------------------------------------------------------------------ WavCaps
def make_wavcaps(root: Path) -> Path:
    fsd = [
        {"id": "101", "file_name": "a.wav", "href": "h", "tags": ["t"], "author": "u", "description": "d",
         "duration": 0.5, "download_link": "l", "caption": "A door creaks."},
        {"id": 102, "caption": "Rain on a roof.", "duration": 0.5},
        {"id": "103", "caption": "A bell rings.", "duration": 0.5},
    ]
    audioset = [{"id": "Yabc.wav", "caption": "Music plays.", "duration": 0.5, "audio": "wav_path"}]
    for source, name, items in (("FreeSound", "fsd_final.json", fsd), ("AudioSet_SL", "as_final.json", audioset)):
        folder = root / "json_files" / source
        folder.mkdir(parents=True)
        (folder / name).write_text(json.dumps({"num_captions_per_audio": 1, "data": items}), encoding="utf-8")
    for name in ("101", "102", "103"):
        write_wav(root / "audio" / "FreeSound" / f"{name}.flac")
    write_wav(root / "audio" / "AudioSet_SL" / "Yabc.flac")
    return root


def test_wavcaps_exclusion_list_keeps_ids_as_strings(tmp_path):
    root = make_wavcaps(tmp_path / "wavcaps")
    exclude = write_csv(tmp_path / "dcase2025_task6_excluded_freesound_ids.csv", ["sound_id"],
                        [["102"], ["Not found"], ["999"]])
    assert read_exclusion_list(exclude) == {"102", "Not found", "999"}
    records, report = prepare_wavcaps(root, tmp_path / "out", sources=["FreeSound", "AudioSet_SL"],
                                      exclude_csv=exclude)
    assert [r.id for r in records["FreeSound"]] == ["101", "103"]
    assert report.excluded == 1 and any("excluded 1" in line for line in report.lines())
    (clip,) = read_manifest(tmp_path / "out" / "wavcaps_audioset_sl.jsonl.gz")
    assert clip.id == "Yabc" and clip.captions == ("Music plays.",) and clip.dataset == "wavcaps/audioset_sl"
    fsd = read_manifest(tmp_path / "out" / "wavcaps_freesound.jsonl.gz")
    assert fsd[0].dataset == "wavcaps/freesound" and fsd[0].split == "train"


def test_wavcaps_bad_items_are_located(tmp_path):
    root = make_wavcaps(tmp_path)
    path = root / "json_files" / "FreeSound" / "fsd_final.json"
    data = json.loads(path.read_text())
    data["data"][1].pop("caption")
    data["data"][2]["caption"] = " "
    path.write_text(json.dumps(data))
    with pytest.raises(DataError) as excinfo:
        prepare_wavcaps(root, sources=["FreeSound"])
    problems = problems_of(excinfo)
    assert any("fsd_final.json, row data[1]" in p and "caption" in p for p in problems)
    assert any("fsd_final.json, row data[2]: empty caption" in p for p in problems)


def test_wavcaps_invalid_utf8_names_line(tmp_path):
    root = make_wavcaps(tmp_path)
    path = root / "json_files" / "AudioSet_SL" / "as_final.json"
    path.write_bytes(b'{"data": [\n{"id": "Yabc.wav",\n"caption": "bad \xff byte"}]}')
    with pytest.raises(DataError, match=r"as_final.json, row 3: invalid utf-8"):
        prepare_wavcaps(root, sources=["AudioSet_SL"])


def test_wavcaps_missing_source_folder(tmp_path):
    with pytest.raises(DataError, match="no JSON file for source 'SoundBible'"):
        prepare_wavcaps(make_wavcaps(tmp_path), sources=["SoundBible"])


# ------------------------------------------------------------------------------------------------------ ESC-50
ESC50_HEADER = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]


def make_esc50(root: Path) -> Path:
    rows = [["1-100-A-0.wav", 1, 0, "dog", True, 100, "A"], ["1-101-A-1.wav", 1, 1, "rooster", False, 101, "A"],
            ["2-102-A-0.wav", 2, 0, "dog", True, 102, "A"], ["2-103-B-1.wav", 2, 1, "rooster", False, 103, "B"]]
    for row in rows:
        write_wav(root / "audio" / row[0])
    write_csv(root / "meta" / "esc50.csv", ESC50_HEADER, rows)
    return root


def test_esc50_layout(tmp_path):
    records, report = prepare_esc50(make_esc50(tmp_path / "esc50"), tmp_path / "out")
    clips = read_manifest(tmp_path / "out" / "esc50.jsonl.gz")
    assert clips == records["esc50"] and len(clips) == 4
    assert clips[0].labels == ("dog",) and clips[0].fold == 1 and clips[0].dataset == "esc50"
    assert clips[0].extra == {"target": 0, "take": "A", "src_file": "100", "esc10": "True"}
    assert any("2 classes, folds [1, 2]" in note for note in report.notes)


def test_esc50_fold_and_target_must_match_the_file_name(tmp_path):
    root = make_esc50(tmp_path)
    rows = list(csv.reader(open(root / "meta" / "esc50.csv")))
    rows[1][1] = "3"  # fold column disagrees with the 1- prefix
    rows[2][2] = "0"  # target column disagrees with the -1 suffix
    write_csv(root / "meta" / "esc50.csv", rows[0], rows[1:])
    with pytest.raises(DataError) as excinfo:
        prepare_esc50(root, dataset="mine")
    problems = problems_of(excinfo)
    assert any("esc50.csv, row 2" in p and "fold prefix 1" in p for p in problems)
    assert any("esc50.csv, row 3" in p and "target 1" in p for p in problems)


def test_esc50_unknown_metadata_format(tmp_path):
    write_csv(tmp_path / "esc50.csv", ["name", "label"], [["a.wav", "dog"]])
    with pytest.raises(DataError, match="unknown format"):
        prepare_esc50(tmp_path)
    with pytest.raises(DataError, match="no metadata CSV"):
        prepare_esc50(tmp_path / "nothing")


KITCHEN_HEADER = ["", "Unnamed: 0", "category", "fold", "orig_idx", "path", "take", "target", "usr_id"]


def make_kitchen(root: Path, present: int) -> Path:
    rows = [[i, i, f"class{i % 2}", i % 3 + 1, i, f"audio/{i % 3}-{500 + i}-A-{i % 2}.wav", "A", i % 2, 500 + i]
            for i in range(4)]
    write_csv(root / "kitchen20.csv", KITCHEN_HEADER, rows)
    for row in rows[:present]:
        write_wav(root / row[5])
    return root


def test_kitchen20_format_missing_files(tmp_path):
    root = make_kitchen(tmp_path, present=2)
    with pytest.raises(DataError) as excinfo:
        prepare_esc50(root)
    assert sum("audio file not found" in p for p in problems_of(excinfo)) == 2
    records, report = prepare_esc50(root, skip_missing=True)
    assert [r.id for r in records["kitchen20"]] == ["0-500-A-0.wav", "1-501-A-1.wav"]
    assert records["kitchen20"][1].fold == 2 and records["kitchen20"][1].extra["freesound_id"] == "501"
    assert len(report.splits["kitchen20"].missing) == 2


def test_kitchen20_subset_list_selects_present_rows(tmp_path):
    root = make_kitchen(tmp_path, present=2)
    write_csv(root / "subset.csv", ["file_name"], [["0-500-A-0.wav"], ["1-501-A-1.wav"]])
    records, _ = prepare_esc50(root)
    assert len(records["kitchen20"]) == 2
    write_csv(root / "subset.csv", ["file_name"], [["0-500-A-0.wav"], ["9-999-A-0.wav"]])
    with pytest.raises(DataError, match="not in"):
        prepare_esc50(root)


def test_kitchen20_real_subset(tmp_path):
    root = SHARED_DATA / "kitchen20_subset"
    if not root.is_dir():
        pytest.skip("shared/data/kitchen20_subset is absent")
    records, _ = prepare_esc50(root, tmp_path)
    clips = read_manifest(tmp_path / "kitchen20.jsonl.gz")
    assert clips == records["kitchen20"]
    assert len(clips) == 160 and len({r.labels for r in clips}) == 20
    assert all(r.fold == int(r.id.split("-")[0]) + 1 for r in clips)
    assert all(r.dataset == "kitchen20" and r.sample_rate == 44100 for r in clips)


# ------------------------------------------------------------------------------------------------------ sources
def test_captioned_csv(tmp_path):
    write_csv(tmp_path / "sources.csv", ["file_name", "label", "caption"], [["s1.wav", "dog", "a dog barks"]])
    write_wav(tmp_path / "s1.wav")
    records, _ = prepare_captioned_csv(tmp_path / "sources.csv", tmp_path / "out")
    (clip,) = read_manifest(tmp_path / "out" / "sources.jsonl.gz")
    assert clip == records["sources"][0]
    assert clip.captions == ("a dog barks",) and clip.labels == ("dog",) and clip.dataset == "sources"
