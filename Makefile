# Two commands for a reader (README "Quick start"):
#   make tutorial   execute the notebook series into build/ and write build/results.md
#   make test       lint, unit tests and every notebook under nbmake (smoke profile, offline)
# Both create .venv on first use and reuse it afterwards.
# CI also runs `make test-colab`: the unit tests against the library versions Colab ships.

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lorakit-installed
# torch 2.13.0 has a local CPU wheel on our machines; a newer or unpinned torch pulls GBs of CUDA.
TORCH  := torch==2.13.0

# What Google Colab ships today (torch aside, which stays as installed).
COLAB_PINS  := transformers==5.15.0 peft==0.20.0 datasets==4.0.0 accelerate==1.14.0
COLAB_VENV  := .venv-colab
COLAB_PY    := $(COLAB_VENV)/bin/python
COLAB_STAMP := $(COLAB_VENV)/.lorakit-installed
# Tests run the tiny smoke model offline. One torch thread per process: on two shared cores,
# tiny models spend more time synchronising threads than computing (a smoke notebook took 35 s
# with one thread and 80 s with two, measured on our 2-core machine under load).
OFFLINE     := LORAKIT_PROFILE=smoke HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=1

.PHONY: venv tutorial test test-colab lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[notebooks,dev]"
	touch $(STAMP)

tutorial: $(STAMP)
	$(PY) scripts/run_tutorial.py

lint: $(STAMP)
	$(PY) -m ruff check .

test: lint
	$(OFFLINE) $(PY) -m pytest tests --nbmake notebooks --durations=15

$(COLAB_STAMP): pyproject.toml
	test -x $(COLAB_PY) || python3 -m venv $(COLAB_VENV)
	$(COLAB_PY) -c "import torch" 2>/dev/null || $(COLAB_PY) -m pip install --quiet $(TORCH)
	$(COLAB_PY) -m pip install --quiet -e ".[dev]" $(COLAB_PINS)
	touch $(COLAB_STAMP)

test-colab: $(COLAB_STAMP)
	$(OFFLINE) $(COLAB_PY) -m pytest tests

clean:
	rm -rf build runs notebooks/runs .pytest_cache
