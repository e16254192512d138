# Shirabe top-level targets. Each target does its own set-up (tools/install.sh
# is idempotent and returns in about a second once the environment is ready).
#
#   make demo   run the Japanese TTS recipe on the embedded mini corpus
#   make test   lint and run the test suite
#   make install / make clean

SHELL := /bin/bash
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install demo test lint clean

install:
	@VENV=$(VENV) tools/install.sh

demo: install
	cd egs/zipvoice_ja && ./run.sh

lint: install
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf egs/*/data egs/*/exp .pytest_cache .ruff_cache
