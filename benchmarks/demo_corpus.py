"""Wall time of the demo corpus generator (``lasr data demo``), small and default sizes.

    .venv/bin/python benchmarks/demo_corpus.py [--seed 0]

Session 2 on an idle 2-core machine: about 1 s for the small test fixture size.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from lasr.data.demo import make_demo

SIZES = {
    "small (test fixture)": dict(n_development=12, n_validation=4, n_evaluation=16, esc50_per_class_per_fold=2,
                                 n_sources=6),
    "default (make demo)": {},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"{'size':<24} {'seconds':>8}")
    for name, sizes in SIZES.items():
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            make_demo(Path(tmp) / "demo", seed=args.seed, **sizes)
            print(f"{name:<24} {time.perf_counter() - started:8.2f}")


if __name__ == "__main__":
    main()
