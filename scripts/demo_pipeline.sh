#!/usr/bin/env bash
# The whole retrieval chain on the demo corpus on CPU (stage 1 -> teachers -> stage 2 -> clusters -> stage 3 ->
# ensemble), printing one table with every stage's test metrics. Makefile: `make demo` can call this after
# `lasr data demo`. Extra arguments go to `lasr demo-chain` (e.g. --train-stage1, --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
DEMO_DIR="${DEMO_DIR:-demo_data}"
if [ ! -f "$DEMO_DIR/manifests/clotho_development.jsonl.gz" ]; then
    "$PY" -m lasr.cli data demo --out "$DEMO_DIR" --seed 0
fi
exec "$PY" -m lasr.cli demo-chain --demo "$DEMO_DIR" "$@"
