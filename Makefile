# The course's two commands (see README.md):
#   make lab    install everything into .venv and open JupyterLab on lesson 01, offline
#   make test   install everything into .venv and run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# Idle OpenMP threads sleep instead of spinning: on a busy 2-core laptop or Binder, spinning
# threads made two-thread torch steps ~25x slower.
export OMP_WAIT_POLICY := PASSIVE
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install lab test notebooks check-notebooks lint benchmarks browser-deps

$(VENV)/.installed: requirements.txt pyproject.toml jupyter/overrides.json
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/python scripts/install_requirements.py requirements.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	mkdir -p $(VENV)/share/jupyter/lab/settings
	cp jupyter/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $@

install: $(VENV)/.installed

lab: install
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir="$(CURDIR)" \
		$(if $(filter 0,$(shell id -u)),--allow-root) notebooks/01_attention.ipynb

browser-deps:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else echo "The browser tests need Chromium: sudo apt-get install -y chromium"; exit 1; fi; }

test: install browser-deps
	$(BIN)/python -m pytest

# For course authors: rebuild both editions after editing notebooks/NN_name.py.
notebooks: install
	$(BIN)/python scripts/build_notebooks.py

check-notebooks: install
	$(BIN)/python scripts/build_notebooks.py --check

lint: install
	$(BIN)/ruff check course_utils tests scripts benchmarks notebooks/*.py conftest.py

benchmarks: install
	$(BIN)/python benchmarks/run_all.py
