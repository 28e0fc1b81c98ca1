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

.PHONY: help install train backbone fit report sweep test test-all lint format clean

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

UCLA_ROOT ?= ../shared/data/nw-ucla/all_sqe
bench-ucla: install ## NW-UCLA table (2 splits x 5 ablation rows x 3 seeds) -> results/, README
	$(BIN)/python -m purls_pl table experiments/tables/nw-ucla.yaml --out lightning_logs/tables/nw-ucla \
	  --set=--data.source.init_args.root=$(UCLA_ROOT) --publish results --readme README.md

report: install ## Print the zero-shot results table of SPLIT's runs
	@$(BIN)/python -m purls_pl report lightning_logs/$(SPLIT) $(wildcard lightning_logs/$(SPLIT)_global)

SWEEP ?= hparams
SWEEP_FILE := lightning_logs/sweeps/$(SWEEP)-$(SPLIT)

sweep: install ## Create a W&B sweep (SWEEP=hparams|partitioner, experiments/sweeps/) over SPLIT; prints the agent command
	@test -f experiments/$(SPLIT).yaml || { echo "no experiments/$(SPLIT).yaml"; exit 1; }
	@test -f experiments/sweeps/$(SWEEP).yaml || { echo "no experiments/sweeps/$(SWEEP).yaml"; exit 1; }
	@mkdir -p lightning_logs/sweeps
	@sed 's#experiments/demo_15_5.yaml#experiments/$(SPLIT).yaml#' experiments/sweeps/$(SWEEP).yaml > $(SWEEP_FILE).yaml
	@$(BIN)/wandb sweep --project purls-pl --name $(SWEEP)-$(SPLIT) $(SWEEP_FILE).yaml 2>&1 | tee $(SWEEP_FILE).log
	@agent=$$(grep -o 'wandb agent [^ ]*' $(SWEEP_FILE).log | tail -1); \
	if [ -z "$$agent" ]; then echo "no sweep was created (see above; \`$(BIN)/wandb login\` first)"; exit 1; fi; \
	echo "Start agents from this directory (each runs trials one after another; --count N stops after N):"; \
	echo "  PATH=$(CURDIR)/$(BIN):\$$PATH $$agent"

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
