# Shirabe top-level targets. Each target does its own set-up (tools/install.sh
# is idempotent and returns in about a second once the environment is ready).
#
#   make demo   run the Japanese TTS recipe on the embedded mini corpus: adapt the shipped
#               pretrained mini model, synthesise unseen voices, score them (PER, MCD, SIM)
#   make test   lint and run the test suite
#   make install / make clean

SHELL := /bin/bash
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install demo test lint clean

install:
	@VENV=$(VENV) tools/install.sh

# The demo's recipe options (stages 0-6, then the evaluation, stage 8, with the same options).
DEMO_OPTS ?= --finetune-from pretrained/zipvoice_tiny_mini --num-epochs 6

demo: install
	cd egs/zipvoice_ja && ./run.sh $(DEMO_OPTS) && ./run.sh --stage 8 --stop-stage 8 $(DEMO_OPTS)

lint: install
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf egs/*/data egs/*/exp .pytest_cache .ruff_cache
