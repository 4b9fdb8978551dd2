"""litdata shards: the same records, the same batches for the same seed as from files; errors before writing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

pytest.importorskip("litdata")

from lasr.cli import main  # noqa: E402
from lasr.data.datamodule import AudioTextDataModule, ManifestSource  # noqa: E402
from lasr.data.manifest import read_manifest, write_manifest  # noqa: E402
from lasr.errors import AudioError, DataError  # noqa: E402


@pytest.fixture(scope="module")
def sharded(demo_corpus, tmp_path_factory):
    manifests = demo_corpus / "manifests"
    out = tmp_path_factory.mktemp("shards")
    for split in ("development", "validation"):
        code = main(["data", "shard", "--manifest", str(manifests / f"clotho_{split}.jsonl.gz"),
                     "--out", str(out / split), "--chunk-bytes", "256KB"])  # small chunks: several per split
        assert code == 0
    return manifests, out


def _batches(train, val, n_batches: int = 4, workers: int = 0):
    module = AudioTextDataModule(train=train, val=val, sample_rate=16000, train_seconds=2.0, eval_seconds=2.0,
                                 batch_size=5, eval_batch_size=4, num_workers=workers, pin_memory=False, seed=7)
    module.setup("fit")
    loaders = [module.train_dataloader(), module.val_dataloader()]
    return [[batch for _, batch in zip(range(n_batches), loader)] for loader in loaders]


@pytest.mark.parametrize("workers", [0, 2])
def test_shards_give_the_same_batches_as_files(sharded, workers):
    manifests, out = sharded
    assert len(list(out.joinpath("development").glob("chunk-*.bin"))) > 1
    from_files = _batches([ManifestSource(str(manifests / "clotho_development.jsonl.gz"), weight=1.5)],
                          [str(manifests / "clotho_validation.jsonl.gz")])
    from_shards = _batches([ManifestSource(str(out / "development"), weight=1.5)], [str(out / "validation")],
                           workers=workers)  # forked workers open their own shard readers
    for file_batches, shard_batches in zip(from_files, from_shards):
        assert len(file_batches) == len(shard_batches) > 0
        for a, b in zip(file_batches, shard_batches):
            assert torch.equal(a["audio"], b["audio"])
            assert torch.equal(a["duration"], b["duration"])
            assert a["audio_id"] == b["audio_id"]
            assert a.get("caption", a.get("captions")) == b.get("caption", b.get("captions"))


def test_threads_reading_one_shard_folder_get_their_own_items(sharded):
    """The evaluation-set check reads shards from a thread pool (litdata's own reader raised KeyError there,
    about one round in four)."""
    from concurrent.futures import ThreadPoolExecutor

    from lasr.data import shards

    manifests, out = sharded
    files = [Path(r.audio_path).read_bytes() for r in read_manifest(manifests / "clotho_development.jsonl.gz")]
    folder = (out / "development").resolve()

    def read(item: int) -> bool:
        return shards.open_shard_audio(f"shard:{folder}#{item}").read() == files[item]

    for _ in range(10):
        shards._OPEN.clear()  # a fresh reader each round: the race would be on the first opens of the chunks
        with ThreadPoolExecutor(8) as pool:
            assert all(pool.map(read, list(range(len(files))) * 2))


def test_shuffled_reads_across_chunks_with_few_open_files(sharded, monkeypatch):
    """Items in shuffled order jump between chunks; with at most two chunk files open, every read still gets
    its own item's bytes (files are closed least recently used first)."""
    from lasr.data import shards

    manifests, out = sharded
    monkeypatch.setattr(shards, "_MAX_OPEN_CHUNKS", 2)
    files = [Path(r.audio_path).read_bytes() for r in read_manifest(manifests / "clotho_development.jsonl.gz")]
    folder = (out / "development").resolve()
    assert len(list(folder.glob("chunk-*.bin"))) > 2
    shards._OPEN.clear()
    order = torch.randperm(len(files), generator=torch.Generator().manual_seed(0)).tolist()
    assert all(shards.open_shard_audio(f"shard:{folder}#{i}").read() == files[i] for i in order + order[::-1])
    assert len(shards._reader(str(folder))._open) == 2
    with pytest.raises(AudioError, match="past the end"):
        shards.open_shard_audio(f"shard:{folder}#{len(files)}")


def test_a_foreign_item_layout_is_refused_naming_the_index(sharded, tmp_path):
    """Shards lasr did not write (other item fields) are refused at the first read, not misread."""
    import json
    import shutil

    from lasr.data import shards

    _, out = sharded
    foreign = tmp_path / "foreign"
    shutil.copytree(out / "validation", foreign)
    index = json.loads((foreign / "index.json").read_text())
    index["config"]["data_format"] = ["bytes", "str", "int"]
    (foreign / "index.json").write_text(json.dumps(index))
    with pytest.raises(AudioError, match=r"not written by lasr data shard.*index\.json|index\.json.*not written"):
        shards.open_shard_audio(f"shard:{foreign.resolve()}#0")


def test_shard_folder_reads_as_the_manifest_with_shard_audio(sharded):
    manifests, out = sharded
    files = read_manifest(manifests / "clotho_validation.jsonl.gz")
    shards = read_manifest(out / "validation")
    assert [r.key for r in shards] == [r.key for r in files]
    assert [r.captions for r in shards] == [r.captions for r in files]
    assert all(r.audio_path == f"shard:{(out / 'validation').resolve()}#{i}" for i, r in enumerate(shards))
    mode = stat.S_IMODE(os.stat(out / "validation").st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o777 & ~umask


def test_missing_audio_is_listed_before_anything_is_written(demo_corpus, tmp_path):
    records = read_manifest(demo_corpus / "manifests" / "clotho_validation.jsonl.gz")
    import dataclasses

    broken = [dataclasses.replace(r, audio_path=str(tmp_path / f"gone{i}.wav")) if i in (1, 3) else r
              for i, r in enumerate(records)]
    write_manifest(broken, tmp_path / "broken.jsonl")
    from lasr.data.shards import write_shards

    with pytest.raises(DataError, match=r"2 of \d+ clips cannot be sharded") as err:
        write_shards(read_manifest(tmp_path / "broken.jsonl"), tmp_path / "out", progress=False)
    assert "gone1.wav" in str(err.value) and "gone3.wav" in str(err.value)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no temporary folder left
