"""Faithfulness of LLM rewrites of demo captions, before and after the exact demo check.

Demo captions know their attributes (``lasr.data.demo.captions``), so :func:`lasr.augment.faithful.demo_check`
decides exactly whether a rewrite keeps every event and attribute and adds none. This script
1. with ``--generate``, draws demo caption plans (no audio needed) and has the packaged Gemma 3 270M paraphrase
   them (one sample each, 48 new tokens at most, batches of 6; 36 captions took 9 min on 2 shared cores), into a
   resumable store and a JSON cache; without it, reads the cache ``benchmarks/data/gemma_rewrites.json``;
2. prints the faithful share of the filter-accepted rewrites by the hand labels of
   ``benchmarks/data/rewrite_faithfulness_labels.json`` (every accepted Gemma rewrite, plus hand-written hard
   cases) before and after the check, and the check's precision/recall as a detector of unfaithful rewrites.

    .venv/bin/python benchmarks/rewrite_faithfulness.py            # from the cache, seconds
    nice .venv/bin/python benchmarks/rewrite_faithfulness.py --generate benchmarks/data/gemma_rewrites.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"


def demo_captions(count: int, seed: int = 0) -> list[dict]:
    """``count`` demo captions with their mentions (one per clip plan)."""
    from lasr.data.demo.captions import make_captions
    from lasr.data.demo.corpus import DemoSpec
    from lasr.data.demo.events import plan_clip

    rng, spec, used, out = np.random.default_rng(seed), DemoSpec(), set(), []
    for i in range(count):
        plan = plan_clip(rng, spec, f"c{i}.wav")
        caption = make_captions(plan, rng, used, count=1)[0]
        out.append({"key": f"demo/c{i}.wav", "text": caption["text"], "mentions": caption["mentions"]})
    return out


def generate(path: Path, count: int, seed: int, store_path: Path, max_tokens: int) -> None:
    from lasr.augment.backends import make_backend
    from lasr.augment.jobs import run_job
    from lasr.augment.kinds import KindConfig, plan
    from lasr.augment.requests import Sampling
    from lasr.augment.store import Store
    from lasr.data.manifest import ClipRecord

    captions = demo_captions(count, seed)
    records = [ClipRecord(id=c["key"].split("/")[1], audio_path="x", duration=5.0, sample_rate=16000,
                          captions=(c["text"],), dataset="demo") for c in captions]
    backend = make_backend("local", model="gemma3-270m", batch_size=6, prompt_style="completion")
    config = KindConfig(model=backend.model_id, sampling=Sampling(max_tokens=max_tokens), samples=1)
    store_path.parent.mkdir(parents=True, exist_ok=True)
    with Store(store_path) as store:  # resumable: a rerun sends only what the store lacks
        run_job(plan("paraphrase", config, records), backend, store, max_attempts=1, progress=True)
        texts = {row.meta["clip_key"]: (row.status, row.text, row.rejection) for row in store.rows(status=None)}
    out = [{**c, "status": texts[c["key"]][0], "rewrite": texts[c["key"]][1], "rejection": texts[c["key"]][2]}
           for c in captions if c["key"] in texts]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False))
    print(f"{len(out)} rewrites -> {path}")


def detector_row(name: str, pairs: list[dict], flags: list[bool]) -> str:
    """Precision/recall of ``flags`` (True = judged unfaithful) against the hand labels."""
    unfaithful = [not p["faithful"] for p in pairs]
    tp = sum(f and u for f, u in zip(flags, unfaithful))
    flagged, positives = sum(flags), sum(unfaithful)
    precision = tp / flagged if flagged else float("nan")
    recall = tp / positives if positives else float("nan")
    return f"| {name} | {len(pairs)} | {positives} | {flagged} | {tp} | {precision:.3f} | {recall:.3f} |"


def evaluate(rewrites: Path, labels: Path, verbose: bool = False) -> None:
    from lasr.augment.faithful import demo_check, source_words_kept

    labelled = json.loads(labels.read_text(encoding="utf-8"))
    truth = {(p["key"], p["rewrite"]): p["faithful"] for p in labelled}
    rows = [r for r in json.loads(rewrites.read_text(encoding="utf-8")) if r["status"] == "accepted"]
    unlabelled = [r["key"] for r in rows if (r["key"], r["rewrite"]) not in truth]
    if unlabelled:
        raise SystemExit(f"{len(unlabelled)} accepted rewrites have no hand label in {labels}: {unlabelled[:5]}")
    total = len(json.loads(rewrites.read_text(encoding="utf-8")))
    kept = [r for r in rows if not demo_check(r["mentions"], r["rewrite"])]
    faithful = sum(truth[(r["key"], r["rewrite"])] for r in rows)
    kept_faithful = sum(truth[(r["key"], r["rewrite"])] for r in kept)
    print(f"Gemma 3 270M paraphrases of {total} demo captions: {len(rows)} accepted by the reply filter")
    print("| rewrites | n | faithful (hand labels) | share |")
    print("|---|---|---|---|")
    print(f"| accepted by the filter (before the check) | {len(rows)} | {faithful} | {faithful / len(rows):.3f} |")
    print(f"| kept by the faithfulness check (after) | {len(kept)} | {kept_faithful} | "
          f"{kept_faithful / max(len(kept), 1):.3f} |")
    print()
    print("Check as a detector of unfaithful rewrites, on the hand-labelled pairs:")
    print("| detector on | pairs | unfaithful | flagged | correct flags | precision | recall |")
    print("|---|---|---|---|---|---|---|")
    for origin in ("gemma3-270m", "hand", None):
        pairs = [p for p in labelled if origin is None or p["origin"] == origin]
        name = f"demo_check, {origin or 'all'}"
        print(detector_row(name, pairs, [bool(demo_check(p["mentions"], p["rewrite"])) for p in pairs]))
    print(detector_row("source_words_kept (real-data signal), all", labelled,
                       [not source_words_kept(p["original"], p["rewrite"]) for p in labelled]))
    errors = [(p, demo_check(p["mentions"], p["rewrite"])) for p in labelled]
    errors = [(p, problems) for p, problems in errors if bool(problems) == p["faithful"]]
    print(f"\ndemo_check errors ({len(errors)}):")
    for p, problems in errors:
        kind = "false alarm" if p["faithful"] else "missed"
        print(f"  {kind:11} [{p['origin']}] {p['rewrite']!r} ({p['why']}) {problems or ''}")
    if verbose:
        for p in labelled:
            problems = demo_check(p["mentions"], p["rewrite"])
            print(f"  {'DROP' if problems else 'KEEP'} {'faithful' if p['faithful'] else 'unfaithful':>10} "
                  f"{p['original']!r} -> {p['rewrite']!r} {problems or ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generate", type=Path, help="write Gemma rewrites of demo captions here")
    parser.add_argument("--count", type=int, default=36)
    parser.add_argument("--store", type=Path, default=Path("/tmp/lasr_bench/gemma_rewrites.sqlite"),
                        help="--generate: resumable result store")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rewrites", type=Path, default=DATA / "gemma_rewrites.json",
                        help="cached rewrites (written by --generate)")
    parser.add_argument("--labels", type=Path, default=DATA / "rewrite_faithfulness_labels.json",
                        help="hand-labelled pairs: [{key, origin, original, rewrite, faithful, why, mentions}]")
    parser.add_argument("--verbose", action="store_true", help="print every labelled pair with its verdict")
    args = parser.parse_args()
    if args.generate:
        generate(args.generate, args.count, args.seed, args.store, args.max_tokens)
    evaluate(args.generate or args.rewrites, args.labels, args.verbose)


if __name__ == "__main__":
    main()
