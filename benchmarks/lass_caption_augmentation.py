"""Does training the separator on LLM-paraphrased captions help? The LASS caption-augmentation ablation on the demo.

For each seed, the demo separator (configs/demo/lass_demo.yaml) is trained twice: on the human captions only
("plain") and with the packaged Gemma-3 270M's paraphrases served by the shared caption policy ("llm": the
paper's rule, the original one of K+1 equally likely entries). Both are evaluated on the same held-out mixtures
(the demo's evaluation clips), queried two ways:

* ``original``: the caption the mixture was planned with;
* ``reworded``: another of the same clip's five human captions (different wording, same sound).

Printed: mean and spread (sample std over seeds) of SDRi and SI-SDRi per arm and query set, next to the SDRi of
the best query-blind gain on the same mixtures (``sdri_best_gain``); written to ``<out>/results.json``.

Paraphrases are cached in an SQLite store (``lasr augment`` resumes it), so a rerun only trains and evaluates.

    python benchmarks/lass_caption_augmentation.py [--seeds 0 1 2] [--epochs N] [--init CKPT] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "demo" / "lass_demo.yaml"
ARMS = ("plain", "llm")
QUERY_SETS = ("original", "reworded")


THREADS: dict[str, str] = {}  # OMP_NUM_THREADS for the subprocesses when --threads is given


def lasr(*args: str) -> None:
    """Run a ``lasr`` command in a subprocess (its own Lightning state), failing loudly."""
    command = [sys.executable, "-c", "import sys; from lasr.cli import main; sys.exit(main(sys.argv[1:]))", *args]
    print("$ lasr " + " ".join(args), flush=True)
    subprocess.run(command, check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **THREADS})


def paraphrase_table(demo: Path, out: Path, dev_limit: int, max_tokens: int) -> Path:
    """Gemma paraphrases (K=1) of the 40 source captions and of slot 0 of the first ``dev_limit`` development
    clips, exported as a caption table; the store makes this a no-op once done."""
    store, table = demo / "augment" / "lass_store.sqlite", out / "paraphrases.jsonl"
    common = ["--backend", "local", "--samples", "1", "--max-tokens", str(max_tokens), "--store", str(store)]
    common += ["--threads", THREADS["OMP_NUM_THREADS"]] if THREADS else []
    lasr("augment", "paraphrase", "--data", str(demo / "manifests" / "sources.jsonl.gz"), *common)
    if dev_limit:
        lasr("augment", "paraphrase", "--data", str(demo / "manifests" / "clotho_development.jsonl.gz"),
             "--slots", "1", "--limit", str(dev_limit), *common)
    lasr("augment", "export", "--store", str(store), "--out", str(table), "--kinds", "paraphrase")
    return table


def query_sets(demo: Path, out: Path) -> dict[str, Path]:
    """The held-out mixtures as two CSVs that differ only in the query wording."""
    from lasr.data.manifest import read_manifest
    from lasr.data.mixtures import MixtureSpec, plan_mixtures, write_mixture_csv

    records = read_manifest(demo / "manifests" / "clotho_evaluation.jsonl.gz")
    specs = plan_mixtures(records)  # the demo's test mixtures (seed 0, -15..15 dB, class-disjoint)
    by_path = {r.audio_path: r for r in records}
    reworded = []
    for spec in specs:
        captions = by_path[spec.source].captions
        other = captions[(captions.index(spec.caption) + 1) % len(captions)]
        reworded.append(MixtureSpec(spec.source, spec.noise, spec.snr, other))
    paths = {"original": out / "test_original.csv", "reworded": out / "test_reworded.csv"}
    write_mixture_csv(specs, paths["original"])
    write_mixture_csv(reworded, paths["reworded"])
    return paths


def train(arm: str, seed: int, epochs: int, table: Path | None, out: Path, init: str | None,
          data_overrides: dict, trainer_overrides: dict) -> Path:
    """One demo training run (the demo config with this run's seed, folders and caption policy); returns its
    last checkpoint."""
    import yaml

    run = (out / f"{arm}_seed{seed}").resolve()
    last = run / "ckpt" / "last.ckpt"
    if last.is_file():
        return last  # finished before: resumable benchmark
    config = yaml.safe_load(CONFIG.read_text())
    config["seed_everything"] = seed
    config["trainer"].update(max_epochs=epochs, default_root_dir=str(run), **trainer_overrides)
    config["trainer"]["logger"]["init_args"]["save_dir"] = str(run / "logs")
    for callback in config["trainer"]["callbacks"]:  # best and last checkpoints: this run's folder, never the demo's
        if "dirpath" in callback.get("init_args", {}):
            callback["init_args"]["dirpath"] = str(run / "ckpt")
    if trainer_overrides.get("limit_val_batches") == 0:  # no validation: keep only last.ckpt (evaluated below)
        config["trainer"]["callbacks"][0]["init_args"].update(monitor=None, save_top_k=0)
    model = config["model"]["init_args"]
    model["query_cache_path"] = str((out / "query_cache.pt").resolve())
    if init:
        model["init_from"] = str(init)
    data = config["data"]["init_args"]
    data.update(seed=seed, mixture_csv_dir=str(run), **data_overrides)
    if arm == "llm":
        data["caption_policy"] = {"class_path": "lasr.data.captions.AugmentedCaptionPolicy",
                                  "init_args": {"table": str(table.resolve()), "p_original": "uniform",
                                                "kinds": ["paraphrase"]}}
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    lasr("fit", "--config", str(run / "config.yaml"), "--test_after_fit=false")
    return last


@torch.no_grad()
def evaluate(checkpoint: Path, csvs: dict[str, Path], eval_seconds: float = 8.0) -> dict[str, dict[str, float]]:
    """Mean SDRi / SI-SDRi / best-gain SDRi of a checkpoint on each query set (one pass per whole mixture);
    cached next to the checkpoint, so runs split over processes (one per seed) can be summarised together."""
    cached = checkpoint.parent / "evaluation.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    results = _evaluate(checkpoint, csvs, eval_seconds)
    cached.write_text(json.dumps(results, indent=2))
    return results


def _evaluate(checkpoint: Path, csvs: dict[str, Path], eval_seconds: float) -> dict[str, dict[str, float]]:
    from lasr.data.mixtures import MixtureEvalDataset, read_mixture_csv
    from lasr.metrics.separation import separation_metrics
    from lasr.models.separation.streaming import load_model_and_query

    model, query = load_model_and_query(str(checkpoint))
    results = {}
    for name, path in csvs.items():
        dataset = MixtureEvalDataset(read_mixture_csv(path), model.sample_rate, eval_seconds)
        rows = []
        for i in range(len(dataset)):
            item = dataset[i]
            estimate = model(item["mixture"][None], query([item["caption"]]))
            length = torch.tensor([item["mixture"].shape[-1]])
            metrics = separation_metrics(estimate, item["target"][None], item["mixture"][None], length)
            rows.append({k: float(v[0]) for k, v in metrics.items()})
        results[name] = {k: statistics.fmean(r[k] for r in rows) for k in ("sdri", "si_sdri", "sdri_best_gain")}
    return results


def spread(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):6.2f} ± {sd:4.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo", type=Path, default=REPO / "demo_data")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "lass_caption_augmentation")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="training epochs per run (default: the demo config's)")
    parser.add_argument("--init", help="start every run from this separator checkpoint (continued training)")
    parser.add_argument("--dev-limit", type=int, default=60,
                        help="development captions to paraphrase besides the 40 source captions")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--train-seconds", type=float, help="training crop in s (default: the demo's 1.5)")
    parser.add_argument("--limit-train-batches", type=int, help="steps per epoch (default: the demo's epoch)")
    parser.add_argument("--threads", type=int, help="CPU threads per process (1 on a crowded machine)")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS),
                        help="train these arms only (the summary needs both, e.g. from another process)")
    parser.add_argument("--skip-validation", action="store_true",
                        help="no validation epoch inside training (the last checkpoint is evaluated either way)")
    parser.add_argument("--table", type=Path, help="use this caption table instead of generating one (waited for "
                                                   "when another process is still writing it)")
    args = parser.parse_args(argv)
    if args.epochs is None:
        import yaml

        args.epochs = int(yaml.safe_load(CONFIG.read_text())["trainer"]["max_epochs"])
    if args.threads:
        THREADS["OMP_NUM_THREADS"] = str(args.threads)
        torch.set_num_threads(args.threads)
    data_overrides = {"train_seconds": args.train_seconds} if args.train_seconds else {}
    trainer_overrides = {"limit_train_batches": args.limit_train_batches} if args.limit_train_batches else {}
    trainer_overrides |= {"limit_val_batches": 0} if args.skip_validation else {}
    overrides = [f"{k}={v}" for k, v in (data_overrides | trainer_overrides).items()]
    started = time.perf_counter()
    if not (args.demo / "manifests" / "clotho_evaluation.jsonl.gz").is_file():
        lasr("data", "demo", "--out", str(args.demo), "--seed", "0")
    args.out.mkdir(parents=True, exist_ok=True)
    csvs = query_sets(args.demo, args.out)
    results: dict[str, dict[int, dict]] = {arm: {} for arm in ARMS}
    table = None
    for seed in args.seeds:  # seed by seed, so that an interrupted run still leaves paired results
        for arm in args.arms:  # plain first: it needs no paraphrases
            if arm == "llm" and table is None and args.table:
                while not args.table.is_file():
                    time.sleep(30)
                table = args.table
            elif arm == "llm" and table is None:
                table = paraphrase_table(args.demo, args.out, args.dev_limit, args.max_tokens)
            last = train(arm, seed, args.epochs, table, args.out, args.init, data_overrides, trainer_overrides)
            results[arm][seed] = evaluate(last, csvs)
            print(f"{arm} seed {seed}: {json.dumps(results[arm][seed])}", flush=True)
            (args.out / "partial.json").write_text(json.dumps(results, indent=2))
    if set(args.arms) != set(ARMS):
        print("one arm only: no comparison printed (run again with both arms once every run is done)")
        return 0
    bound = {q: results[ARMS[0]][args.seeds[0]][q]["sdri_best_gain"] for q in QUERY_SETS}
    print(f"\nLASS caption augmentation on the demo: {len(args.seeds)} seeds {args.seeds}, {args.epochs} epochs"
          + (f" from {args.init}" if args.init else "") + (f" ({' '.join(overrides)})" if overrides else "")
          + "; SDRi / SI-SDRi in dB, mean ± std over seeds")
    print(f"{'arm':<7} {'queries':<9} {'SDRi':>14} {'SI-SDRi':>14} {'best gain (query-blind)':>24}")
    for arm in ARMS:
        for q in QUERY_SETS:
            sdri = [results[arm][s][q]["sdri"] for s in args.seeds]
            si = [results[arm][s][q]["si_sdri"] for s in args.seeds]
            print(f"{arm:<7} {q:<9} {spread(sdri):>14} {spread(si):>14} {bound[q]:>24.2f}")
    for q in QUERY_SETS:
        diffs = [results["llm"][s][q]["sdri"] - results["plain"][s][q]["sdri"] for s in args.seeds]
        print(f"llm - plain, {q} queries: SDRi {spread(diffs)} dB (per-seed: {', '.join(f'{d:+.2f}' for d in diffs)})")
    summary = {"seeds": args.seeds, "epochs": args.epochs, "init": args.init, "overrides": overrides,
               "results": results,
               "best_gain_sdri": bound, "seconds": time.perf_counter() - started}
    (args.out / "results.json").write_text(json.dumps(summary, indent=2))
    print(f"results in {args.out / 'results.json'} ({summary['seconds'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
