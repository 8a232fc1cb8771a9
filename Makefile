# Two commands for a reader (README "Quick start"):
#   make tutorial   execute the notebook series into build/ and write build/results.md
#   make test       lint, unit tests and every notebook under nbmake (smoke profile, offline)
# Both create .venv on first use and reuse it afterwards.

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lorakit-installed
# torch 2.13.0 has a local CPU wheel on our machines; a newer or unpinned torch pulls GBs of CUDA.
TORCH  := torch==2.13.0

.PHONY: venv tutorial test lint clean

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
	LORAKIT_PROFILE=smoke HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
		$(PY) -m pytest tests --nbmake notebooks

clean:
	rm -rf build runs .pytest_cache
