"""``lasr augment``: run an LLM augmentation kind over a manifest (or label list) and export the caption table.

Examples::

    lasr augment paraphrase --data demo_data/manifests/clotho_development.jsonl.gz --backend local --limit 40
    lasr augment rewrite --data m.jsonl.gz --backend openai --base-url http://127.0.0.1:8000/v1 --model qwen
    lasr augment class-prompts --labels esc50_labels.txt --backend openai --api-key-env OPENAI_API_KEY ...
    lasr augment export --store augment/store.sqlite --out augment/captions.jsonl
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from lasr.augment.backends import make_backend
from lasr.augment.export import FINAL_STAGES, export
from lasr.augment.filters import FilterConfig
from lasr.augment.jobs import run_job
from lasr.augment.kinds import KINDS, KindConfig, plan
from lasr.augment.prompts import TEMPLATE_DIR
from lasr.augment.requests import Sampling
from lasr.augment.store import Store
from lasr.data.checks import (
    check_output_file, non_negative_float, non_negative_int, positive_float, positive_int,
)
from lasr.data.manifest import read_manifest
from lasr.errors import DataError, LasrError

DEFAULT_STORE = "augment/store.sqlite"
# (temperature, top_k) defaults per kind: ReCLAP's rewrite decoding (Sreyan88/ReCLAP prompts/llama_rephrase.py)
# and its prompt augmentation (gpt-4o, temperature 0.7: prompts/stage_1.py, stage_2.py)
KIND_DECODING = {"rewrite": (0.4, 50), "class-prompts": (0.7, None)}


def _common(parser: argparse.ArgumentParser) -> None:
    inputs = parser.add_argument_group("inputs")
    inputs.add_argument("--data", action="append", default=[], help="manifest(s) with captions")
    inputs.add_argument("--labels", help="class-prompts: text file, one label per line (default: manifest labels)")
    inputs.add_argument("--limit", type=positive_int, help="source captions (labels) to use, in manifest order")
    inputs.add_argument("--slots", type=positive_int, help="caption slots per clip (default all)")
    parser.add_argument("--store", default=DEFAULT_STORE, help="SQLite result store (resumable)")
    backend = parser.add_argument_group("backend")
    backend.add_argument("--backend", choices=["openai", "local", "vllm", "batch"], default="local")
    backend.add_argument("--model", help="model name (openai/vllm/batch) or local path/GGUF (default gemma3-270m)")
    backend.add_argument("--base-url", default="http://127.0.0.1:8000/v1", help="openai: endpoint base URL")
    backend.add_argument("--api-key-env", help="openai: NAME of the environment variable holding the API key")
    backend.add_argument("--concurrency", type=positive_int, default=8)
    backend.add_argument("--timeout", type=positive_float, default=60.0, help="seconds per HTTP attempt")
    backend.add_argument("--max-retries", type=non_negative_int, default=5, help="HTTP retries on 429/5xx/connection errors")
    backend.add_argument("--retry-after-max", type=float, default=600.0,
                         help="openai: longest server Retry-After (s) waited for")
    backend.add_argument("--batch-size", type=positive_int, default=8, help="local: prompts per generate call")
    backend.add_argument("--prompt-style", choices=["chat", "completion"], help="default: local completion, else chat")
    backend.add_argument("--threads", type=positive_int, help="local: torch CPU threads")
    backend.add_argument("--batch-out", default="augment/batch_requests.jsonl", help="batch: requests to upload")
    backend.add_argument("--batch-in", action="append", default=[], help="batch: Batch API result file(s)")
    gen = parser.add_argument_group("generation")
    gen.add_argument("--samples", type=positive_int, default=2, help="outputs per source (k)")
    gen.add_argument("--temperature", type=non_negative_float,
                     help=f"default: the kind's ({', '.join(f'{k} {v[0]}' for k, v in KIND_DECODING.items())}, else 0.7)")
    gen.add_argument("--top-p", type=positive_float, default=1.0)
    gen.add_argument("--top-k", type=int, help="default: the kind's (rewrite: 50, ReCLAP), else none")
    gen.add_argument("--max-tokens", type=positive_int, default=64)
    gen.add_argument("--seed", type=non_negative_int, default=0)
    gen.add_argument("--max-attempts", type=positive_int, default=3, help="tries per request when outputs are rejected")
    gen.add_argument("--min-words", type=non_negative_int, default=3)
    gen.add_argument("--max-words", type=positive_int, default=30)
    gen.add_argument("--languages", default="German,French", help="backtranslate: pivot languages, comma-separated")
    gen.add_argument("--pairs", type=positive_int, default=100, help="mix: clip pairs; modifiers: examples")
    gen.add_argument("--descriptions", type=positive_int, default=5, help="class-prompts: descriptions per label")
    gen.add_argument("--captions-per-description", type=positive_int, default=10,
                     help="class-prompts (ReCLAP: 5 descriptions x 10 captions = 50 candidates per label)")
    gen.add_argument("--template", action="append", default=[], metavar="ID=PATH", help="override a template")
    parser.add_argument("--no-progress", action="store_true")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    for kind in KINDS:
        _common(sub.add_parser(kind, help=f"generate {kind} captions"))
    ex = sub.add_parser("export", help="write the caption table (JSONL/CSV) the DataModule reads")
    ex.add_argument("--store", default=DEFAULT_STORE)
    ex.add_argument("--out", required=True, help=".jsonl, .jsonl.gz or .csv")
    ex.add_argument("--kinds", default=",".join(FINAL_STAGES), help="comma-separated kinds")
    ex.add_argument("--model", help="only rows of this model id")
    ex.add_argument("--all-provenances", action="store_true",
                    help="keep rows of every template version / sampling setting (default: the latest only)")
    ex.add_argument("--fidelity", type=float, nargs=2, metavar=("LO", "HI"),
                    help="keep paraphrase/rewrite/backtranslate outputs whose MiniLM cosine to the source is in "
                         "[LO, HI] (suggested start: 0.55 0.97)")
    sub.add_parser("templates", help="list the packaged prompt templates")
    retry = sub.add_parser("retry", help="send failed/rejected requests again on the next run of their kind")
    retry.add_argument("--store", default=DEFAULT_STORE)
    retry.add_argument("--rejected", required=True, metavar="REASON",
                       help="rejection reason (refused, undecodable, malformed, too_long, ...) or 'all'")
    retry.add_argument("--kind", help="only rows of this kind")
    lb = sub.add_parser("loopback", help="serve the fake chat-completions endpoint the tests use (Ctrl-C stops)")
    lb.add_argument("--port", type=int, default=8000)
    lb.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    fig = sub.add_parser("figures", help="spectrogram figures of the audio transforms (docs/audio_augment.md)")
    fig.add_argument("--manifest", default="demo_data/manifests/clotho_development.jsonl.gz")
    fig.add_argument("--out", default="docs/images")
    fig.add_argument("--sample-rate", type=int, default=16000)
    fig.add_argument("--seconds", type=float, default=8.0)
    fig.add_argument("--seed", type=non_negative_int, default=0)


def _backend(args: argparse.Namespace):
    if args.backend == "local":
        return make_backend("local", model=args.model or "gemma3-270m", batch_size=args.batch_size,
                            prompt_style=args.prompt_style or "completion", threads=args.threads)
    if not args.model:
        raise LasrError(f"--model is required for the {args.backend} backend")
    if args.backend == "openai":
        return make_backend("openai", base_url=args.base_url, model=args.model, api_key_env=args.api_key_env,
                            concurrency=args.concurrency, timeout_s=args.timeout, max_retries=args.max_retries,
                            retry_after_max_s=args.retry_after_max)
    if args.backend == "vllm":
        return make_backend("vllm", model=args.model, prompt_style=args.prompt_style or "chat")
    return make_backend("batch", model=args.model, requests_out=args.batch_out, results=args.batch_in)


def _labels(args: argparse.Namespace, records) -> list[str]:
    if args.labels:
        path = Path(args.labels)
        if not path.is_file():
            raise DataError("label file not found", path)
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return sorted({label for record in records for label in record.labels})


def _run_kind(args: argparse.Namespace) -> int:
    check_output_file(args.store, "--store")
    if args.backend == "batch":
        check_output_file(args.batch_out, "--batch-out")
    records = [record for path in args.data for record in read_manifest(path)]
    if args.action != "class-prompts" and not records:
        raise LasrError("give at least one --data manifest with captions")
    labels = _labels(args, records) if args.action == "class-prompts" else []
    overrides = dict(item.split("=", 1) for item in args.template)
    temperature, top_k = KIND_DECODING.get(args.action, (0.7, None))
    sampling = Sampling(temperature if args.temperature is None else args.temperature, args.top_p, args.max_tokens,
                        args.seed, top_k if args.top_k is None else args.top_k)
    # templates are rendered (and placeholders checked) by a dry plan before a backend is even loaded
    def config_for(model: str) -> KindConfig:
        return KindConfig(model=model, sampling=sampling, samples=args.samples, seed=args.seed, limit=args.limit,
                          slots=args.slots, languages=tuple(s.strip() for s in args.languages.split(",") if s.strip()),
                          pairs=args.pairs, descriptions=args.descriptions,
                          captions_per_description=args.captions_per_description, templates=overrides)

    plan(args.action, config_for("dry-run"), records, labels)[0][1](None)
    backend = _backend(args)
    stages = plan(args.action, config_for(backend.model_id), records, labels)
    with Store(args.store) as store:
        summary = run_job(stages, backend, store, max_attempts=args.max_attempts, progress=not args.no_progress,
                          filter_config=FilterConfig(min_words=args.min_words, max_words=args.max_words))
    print(summary.table())
    if args.backend == "batch" and backend.exported:
        print(f"{backend.exported} requests written to {args.batch_out}: submit them to the Batch API and run "
              f"again with --batch-in RESULTS.jsonl")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "templates":
        for path in sorted(TEMPLATE_DIR.glob("*.yaml")):
            print(path.stem)
        return 0
    if args.action == "retry":
        if not Path(args.store).is_file():
            raise DataError("result store not found", args.store)
        with Store(args.store) as store:
            count = store.mark_retry(args.rejected, args.kind)
        print(f"{count} request(s) with reason {args.rejected!r} marked: the next run of their kind sends them again")
        return 0
    if args.action == "loopback":
        from lasr.augment.loopback import LoopbackChatServer

        server = LoopbackChatServer(args.latency, port=args.port).start()
        print(f"serving {server.url}/chat/completions (Ctrl-C to stop)", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            server.stop()
        return 0
    if args.action == "figures":
        from lasr.augment.audio.figures import write_figures

        write_figures(args.manifest, args.out, args.sample_rate, args.seconds, args.seed)
        return 0
    if args.action == "export":
        if not Path(args.store).is_file():
            raise DataError("result store not found", args.store)
        check_output_file(args.out)
        with Store(args.store) as store:
            counts = export(store, args.out, [k for k in args.kinds.split(",") if k], args.model,
                            tuple(args.fidelity) if args.fidelity else None, args.all_provenances)
        print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no accepted rows", f"-> {args.out}")
        return 0
    return _run_kind(args)
