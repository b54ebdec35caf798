# Two commands: `make run` (index a folder and serve it) and `make test` (lint, types, tests).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PHOTOS ?= $(firstword $(wildcard $(HOME)/Pictures) $(wildcard ../shared/eval/photos/exif))
LIBRARY ?=
LIB_FLAG := $(if $(LIBRARY),--library $(LIBRARY),)

.PHONY: run test lint types pytest system-deps clean bench export-env

# torch/torchvision are pinned to the releases this machine's pip serves from disk (newer ones download GBs).
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[dev,queue,openvino]'
	touch $(STAMP)

# OpenVINO export tooling for the tests and bench/vlm.py (bench/ov_export.py): optimum-intel 2.2.0 exports
# Qwen3-VL only with transformers <= 5.0, so these live in their own folder, put in front of the app's
# packages (torch, openvino) for the export process only. --no-deps: a plain install pulls CUDA torch.
EXPORT_ENV := .venv-export
EXPORT_STAMP := $(EXPORT_ENV)/.installed
# The pins are in export-requirements.txt: only an edit there reinstalls the folder.
$(EXPORT_STAMP): export-requirements.txt | $(STAMP)
	rm -rf $(EXPORT_ENV)
	$(BIN)/pip install --quiet --no-deps --target $(EXPORT_ENV) -r export-requirements.txt
	touch $(EXPORT_STAMP)

export-env: $(EXPORT_STAMP)

run: $(STAMP)
	@if [ -z "$(PHOTOS)" ] || [ ! -d "$(PHOTOS)" ]; then \
		echo "no photo folder: run 'PHOTOS=/path/to/photos make run'"; exit 2; fi
	$(BIN)/smartalbum $(LIB_FLAG) add "$(PHOTOS)"
	$(BIN)/smartalbum $(LIB_FLAG) index
	$(BIN)/smartalbum $(LIB_FLAG) status
	$(BIN)/smartalbum $(LIB_FLAG) serve

# What the tests need from Debian: a CJK font (OCR tests render Chinese text), Chromium (browser tests;
# Playwright drives Debian's /usr/bin/chromium because its own browser download cannot work offline),
# espeak-ng (speech tests synthesise the questions they transcribe) and redis-server (the queue tests start
# real brokers).
APT_NEEDS := $(if $(shell fc-list :lang=zh 2>/dev/null),,fonts-noto-cjk fontconfig) \
	$(if $(wildcard /usr/bin/chromium),,chromium) \
	$(if $(wildcard /usr/bin/espeak-ng),,espeak-ng) \
	$(if $(wildcard /usr/bin/redis-server),,redis-server)
system-deps:
	@if [ -n "$(strip $(APT_NEEDS))" ]; then \
		echo "installing with apt: $(strip $(APT_NEEDS))"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_NEEDS) >/dev/null) \
		|| { echo "could not install $(APT_NEEDS): run as root or install them yourself"; exit 1; }; fi

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

types: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) $(EXPORT_STAMP) system-deps
	$(BIN)/pytest -q

test: lint types pytest

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) $(EXPORT_ENV) .mypy_cache .ruff_cache .pytest_cache .test-artifacts
