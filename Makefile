# purls-pl — `make help` lists the targets. Variables: SPLIT, ARGS, PRETRAIN_ARGS, TORCH, PYTHON.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU wheel these machines carry; for CUDA e.g. `make install TORCH="torch==2.13.0 --index-url ..."`.
TORCH ?= torch==2.13.0
SPLIT ?= demo_15_5
ARGS ?=
PRETRAIN_ARGS ?=
PYTEST_ARGS ?=
BACKBONE := lightning_logs/backbones/$(SPLIT).pt

.PHONY: help install train backbone fit report test test-all lint format clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  Variables: SPLIT=$(SPLIT) (experiments/<SPLIT>.yaml), ARGS='--model.alpha=uniform ...' (PURLS CLI overrides),"
	@echo "             PRETRAIN_ARGS (stage-1 overrides), TORCH='$(TORCH)' (torch requirement), PYTHON=$(PYTHON)"

install: $(VENV)/.installed ## Create .venv and install the project with its dev extras

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[dev,plots]"
	touch $@

train: install ## Stage 1 if needed, then PURLS (+ the Global baseline if configured) on SPLIT; prints results
	@$(MAKE) --no-print-directory backbone SPLIT=$(SPLIT)
	@$(MAKE) --no-print-directory fit SPLIT=$(SPLIT)
	@if [ -f experiments/$(SPLIT)_global.yaml ]; then \
	  $(BIN)/python -m purls_pl fit --config experiments/$(SPLIT)_global.yaml $(ARGS); fi
	@$(MAKE) --no-print-directory report SPLIT=$(SPLIT)

backbone: install ## Stage 1: pre-train the backbone on SPLIT's seen classes (skipped when its export exists)
	@if [ -f $(BACKBONE) ]; then echo "stage 1: reusing $(BACKBONE) (delete it to retrain)"; \
	elif [ -f experiments/backbones/$(SPLIT).yaml ]; then \
	  $(BIN)/python -m purls_pl.pretrain fit --config experiments/backbones/$(SPLIT).yaml \
	    --export.path=$(BACKBONE) $(PRETRAIN_ARGS); \
	else echo "no experiments/backbones/$(SPLIT).yaml: provide $(BACKBONE) yourself"; exit 1; fi

fit: install ## Stage 2 only: PURLS on SPLIT with experiments/<SPLIT>.yaml
	$(BIN)/python -m purls_pl fit --config experiments/$(SPLIT).yaml $(ARGS)

report: install ## Print the zero-shot results table of SPLIT's runs
	@$(BIN)/python -m purls_pl report lightning_logs/$(SPLIT) $(wildcard lightning_logs/$(SPLIT)_global)

test: install ## Run the test suite (fast tests; CI runs this)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: install ## Run every test, the slow end-to-end ones included
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install ## ruff lint and format check
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/ruff format --check src tests $(wildcard bench)

format: install ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix src tests $(wildcard bench)
	$(BIN)/ruff format src tests $(wildcard bench)

clean: ## Remove caches and build files (keeps .venv, lightning_logs and the data cache)
	rm -rf build dist src/*.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
