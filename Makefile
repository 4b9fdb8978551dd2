# Two commands set up everything on a fresh machine:  make demo   and   make test
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lasr-installed
DEMO_DIR ?= demo_data

.PHONY: install demo demo-llm demo-lass-llm demo-audioaug demo-all-terms test bench clean-demo

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchaudio==2.11.0
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The main job: demo corpus -> stage-1 retrieval (metrics vs chance) -> teachers, stage 2, clusters, stage 3 and
# ensemble (one table) -> language-queried separation (SDR, SDRi, SI-SDR).
demo: $(STAMP)
	$(VENV)/bin/lasr data demo --out $(DEMO_DIR) --seed 0
	$(VENV)/bin/lasr fit --config configs/demo/stage1_demo.yaml
	$(VENV)/bin/lasr demo-chain --demo $(DEMO_DIR)
	$(VENV)/bin/lasr fit --config configs/demo/lass_demo.yaml

# Stage 1 on captions the packaged Gemma LLM paraphrased (a few minutes of generation on 2 cores).
demo-llm: $(STAMP)
	$(VENV)/bin/lasr data demo --out $(DEMO_DIR) --seed 0
	$(VENV)/bin/lasr augment paraphrase --data $(DEMO_DIR)/manifests/clotho_development.jsonl.gz --backend local \
		--slots 1 --limit 32 --samples 1 --max-tokens 48 --store $(DEMO_DIR)/augment/store.sqlite
	$(VENV)/bin/lasr augment export --store $(DEMO_DIR)/augment/store.sqlite --out $(DEMO_DIR)/augment/captions.jsonl
	$(VENV)/bin/lasr fit --config configs/demo/stage1_augmented.yaml

# Separation with and without Gemma-paraphrased captions, 3 seeds x 6 epochs (a third of the demo separator's 18, so the
# six runs fit in about 45 min on 2 cores; paraphrases cached).
demo-lass-llm: $(STAMP)
	$(VENV)/bin/lasr data demo --out $(DEMO_DIR) --seed 0
	$(PY) benchmarks/lass_caption_augmentation.py --demo $(DEMO_DIR) --seeds 0 1 2 --epochs 6 --skip-validation

# Stage 1 with AudioSetMix-style transforms, modifier captions and hard negatives.
demo-audioaug: $(STAMP)
	$(VENV)/bin/lasr data demo --out $(DEMO_DIR) --seed 0
	$(VENV)/bin/lasr fit --config configs/demo/stage1_audioaug.yaml

# Every loss term at once: hard negatives + distillation (online stage-1 teacher) + topic heads; after `make demo`.
demo-all-terms: $(STAMP)
	$(VENV)/bin/lasr fit --config configs/demo/stage3_all_terms.yaml

test: $(STAMP)
	$(VENV)/bin/pytest -q

bench: $(STAMP)
	$(PY) benchmarks/retrieval_metrics.py
	$(PY) benchmarks/dataloader.py
	$(PY) benchmarks/search_latency.py
	$(PY) benchmarks/teachers.py
	$(PY) benchmarks/augment_throughput.py
	$(PY) benchmarks/separate.py

clean-demo:
	rm -rf $(DEMO_DIR) checkpoints/demo logs/demo_* outputs/demo
