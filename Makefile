# Two commands set up everything on a fresh machine:  make demo   and   make test
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lasr-installed
DEMO_DIR ?= demo_data

.PHONY: install demo test bench clean-demo

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchaudio==2.11.0
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lasr data demo --out $(DEMO_DIR) --seed 0
	$(VENV)/bin/lasr fit --config configs/demo/stage1_demo.yaml

test: $(STAMP)
	$(VENV)/bin/pytest -q

bench: $(STAMP)
	$(PY) benchmarks/retrieval_metrics.py
	$(PY) benchmarks/dataloader.py

clean-demo:
	rm -rf $(DEMO_DIR) checkpoints/demo logs/demo_*
