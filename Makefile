# purls-pl — `make help` lists the targets. Variables: SPLIT, SEED, ARGS, PRETRAIN_ARGS, DATA_ARGS, TORCH, PYTHON.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU wheel these machines carry; for CUDA e.g. `make install TORCH="torch==2.13.0 --index-url ..."`.
TORCH ?= torch==2.13.0
SPLIT ?= demo_15_5
SEED ?= 0
ARGS ?=
PRETRAIN_ARGS ?=
# Overrides of the data for both stages, e.g. DATA_ARGS=--data.source.init_args.root=/data/nturgb+d_skeletons
DATA_ARGS ?=
PYTEST_ARGS ?=
# `python -m purls_pl configs` composes a run's experiment files (base + the split's dataset recipe).
PURLS := $(BIN)/python -m purls_pl
CONFIGS = $$($(PURLS) configs $(SPLIT) --stage $(1))

.PHONY: help install train backbone fit select bench bench-ucla bench-penn bench-levers bench-methods bench-scale video-demo report sweep test test-all lint format clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  Variables: SPLIT=$(SPLIT) (any registered split), SEED=$(SEED) (drives both stages),"
	@echo "             ARGS='--model.alpha=uniform ...' (PURLS CLI overrides), PRETRAIN_ARGS (stage-1 overrides),"
	@echo "             DATA_ARGS='--data.source.init_args.root=DIR' (both stages: where your data are),"
	@echo "             TORCH='$(TORCH)' (torch requirement), PYTHON=$(PYTHON)"

install: $(VENV)/.installed ## Create .venv and install the project with its dev extras

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[dev,plots,text]"
	touch $@

ifneq (,$(findstring --print_config,$(ARGS)))
train: install # with ARGS=--print_config: print the three resolved configs, run nothing
	$(PURLS) pretrain fit $(call CONFIGS,backbone) --seed_everything=$(SEED) $(DATA_ARGS) $(PRETRAIN_ARGS) --print_config
	$(PURLS) fit $(call CONFIGS,purls) --seed_everything=$(SEED) $(DATA_ARGS) $(ARGS)
	$(PURLS) fit $(call CONFIGS,global) --seed_everything=$(SEED) $(DATA_ARGS) $(ARGS)
else
train: install ## Stage 1 if needed, then PURLS and the Global baseline on SPLIT; prints results
	@$(MAKE) --no-print-directory backbone SPLIT=$(SPLIT) SEED=$(SEED)
	@$(MAKE) --no-print-directory fit SPLIT=$(SPLIT) SEED=$(SEED)
	$(PURLS) fit $(call CONFIGS,global) --seed_everything=$(SEED) $(DATA_ARGS) $(ARGS)
	@$(MAKE) --no-print-directory report SPLIT=$(SPLIT)
endif

backbone: install ## Stage 1: pre-train the backbone on SPLIT's seen classes (skipped when its export exists)
	@export=$$($(PURLS) configs $(SPLIT) --backbone-path --seed $(SEED)); \
	if [ -f "$$export" ]; then echo "stage 1: reusing $$export (delete it to retrain)"; \
	else $(PURLS) pretrain fit $(call CONFIGS,backbone) --seed_everything=$(SEED) $(DATA_ARGS) $(PRETRAIN_ARGS); fi

fit: install ## Stage 2 only: PURLS on SPLIT
	$(PURLS) fit $(call CONFIGS,purls) --seed_everything=$(SEED) $(DATA_ARGS) $(ARGS)

STAGE ?= purls
SELECT_ARGS ?=
select: install ## Choose SPLIT's settings on validation classes -> experiments/selected/SPLIT/STAGE.yaml (make train reads it)
	$(PURLS) select $(SPLIT) --stage $(STAGE) $(SELECT_ARGS)

UCLA_ROOT ?= ../shared/data/nw-ucla/all_sqe
PENN_ROOT ?= ../shared/data/penn-action/labels
# Tables run JOBS runs side by side with one torch thread each: the numbers depend on the thread count only.
JOBS ?= $$(nproc)
TABLE = $(PURLS) table experiments/tables/$(1).yaml --out lightning_logs/tables/$(or $(3),$(1)) --jobs $(JOBS) --threads 1 \
	  --set=--data.source.init_args.root=$(2) --publish results --readme README.md $(if $(RESELECT),--reselect)
bench-ucla: install ## NW-UCLA table under the evaluation protocol -> results/, README (RESELECT=1: re-derive selections)
	$(call TABLE,nw-ucla,$(UCLA_ROOT))

bench-penn: install ## Penn Action table under the evaluation protocol -> results/, README (RESELECT=1: re-derive selections)
	$(call TABLE,penn-action,$(PENN_ROOT))

# Each field's own top-1 on the unseen classes of a table's runs (diagnosis only, after every choice is made).
FIELDS = $(PURLS) report lightning_logs/tables/$(1)/$(2)/purls__paper_method__settings_selected --fields > results/$(1)-fields.md
bench-levers: install ## What each text/alignment lever adds (NW-UCLA and Penn Action, 5 unseen classes) -> results/, README
	$(call TABLE,nw-ucla-levers,$(UCLA_ROOT),nw-ucla)
	$(call TABLE,penn-action-levers,$(PENN_ROOT),penn-action)
	$(call FIELDS,nw-ucla,nw-ucla_5_5)
	$(call FIELDS,penn-action,penn-action_10_5)

# Each unseen class's top-1 per table row on a paper split (mean over its seeds; diagnosis after every choice is made).
CLASSES = { echo "\#\# $(2)"; $(PURLS) report lightning_logs/tables/$(1)/$(2) --per-class | sed -n '/^Each unseen class/,$$p'; echo; }
bench-methods: install ## Every method on one harness (NW-UCLA, Penn Action; 5 unseen classes) -> results/methods.{md,csv}, README
	@start=$$(date +%s); \
	$(call TABLE,methods-nw-ucla,$(UCLA_ROOT),nw-ucla) && $(call TABLE,methods-penn-action,$(PENN_ROOT),penn-action) && \
	cat results/methods-nw-ucla.md results/methods-penn-action.md > results/methods.md && \
	{ cat results/methods-nw-ucla.csv; tail -n +2 results/methods-penn-action.csv; } > results/methods.csv && \
	$(call CLASSES,nw-ucla,nw-ucla_5_5) > results/methods-per-class.md && \
	$(call CLASSES,penn-action,penn-action_10_5) >> results/methods-per-class.md; \
	status=$$?; echo "make bench-methods: $$(( ($$(date +%s) - start) / 60 )) min wall"; exit $$status

# The NTU-120-sized rehearsal: ~50 GB of scratch space under $TMPDIR (or SCALE_ARGS="--work DIR"), ~45 min on 2 cores.
SCALE_ARGS ?=
bench-scale: install ## NTU-120-sized data and training rehearsal (114,480 files) -> results/scale.{md,json}; figures in bench/README.md
	$(BIN)/python bench/scale.py --json results/scale.json --markdown results/scale.md $(SCALE_ARGS)

# Video in, actions out (make video-demo): its own venv with the video extra (mediapipe pins numpy < 2), a small
# Penn Action checkpoint (both stages under lightning_logs/video-demo, VIDEO_EPOCHS stage-1 epochs), the offline
# cameraman clip, then recognize-video -> results/video-demo/ (segments.csv/json, timeline.png).
VIDEO_VENV ?= .venv-video
VIDEO_RUNS ?= lightning_logs/video-demo
VIDEO_OUT ?= results/video-demo
VIDEO_EPOCHS ?= 5
VIDEO_CLASSES ?= squat, jumping jacks, jump rope, bowling, tennis serve, golf swing, baseball pitch, strum guitar
VPURLS = OMP_NUM_THREADS=1 $(VIDEO_VENV)/bin/python -m purls_pl
video-demo: $(VIDEO_VENV)/.installed ## recognize-video on an offline clip with a small Penn Action checkpoint -> results/video-demo/
	@set -e; start=$$(date +%s); penn="--data.source.init_args.root=$(PENN_ROOT) --trainer.default_root_dir=$(VIDEO_RUNS)"; \
	if [ ! -f $(VIDEO_RUNS)/backbones/penn-action_10_5/seed0.pt ]; then \
	  $(VPURLS) pretrain fit $$($(VPURLS) configs penn-action_10_5 --stage backbone) --seed_everything=0 $$penn \
	    --trainer.max_epochs=$(VIDEO_EPOCHS); fi; \
	ckpt=$$(ls -t $(VIDEO_RUNS)/penn-action_10_5*/version_*/checkpoints/last.ckpt 2>/dev/null | head -1); \
	if [ -z "$$ckpt" ]; then $(VPURLS) fit $$($(VPURLS) configs penn-action_10_5 --stage purls) --seed_everything=0 $$penn; \
	  ckpt=$$(ls -t $(VIDEO_RUNS)/penn-action_10_5*/version_*/checkpoints/last.ckpt | head -1); fi; \
	$(VIDEO_VENV)/bin/python -m purls_pl.video.demo_clip $(VIDEO_RUNS)/camera.mp4; \
	$(VPURLS) recognize-video $(VIDEO_RUNS)/camera.mp4 --checkpoint $$ckpt --classes "$(VIDEO_CLASSES)" \
	  --descriptions descriptions/penn-action.json --out $(VIDEO_OUT) --render $(VIDEO_RUNS)/camera-actions.gif; \
	echo "make video-demo: $$(( $$(date +%s) - start )) s wall (checkpoint $$ckpt)"

$(VIDEO_VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VIDEO_VENV)
	$(VIDEO_VENV)/bin/pip install -q --upgrade pip
	$(VIDEO_VENV)/bin/pip install -q $(TORCH)
	$(VIDEO_VENV)/bin/pip install -q -e ".[dev,plots,text,video]"
	touch $@

bench: install ## Every CPU benchmark: the NW-UCLA and Penn Action tables (+ their wall times)
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory bench-ucla && $(MAKE) --no-print-directory bench-penn; \
	status=$$?; echo "make bench: $$(( ($$(date +%s) - start) / 60 )) min wall"; exit $$status

report: install ## Print the zero-shot results table of SPLIT's runs
	@$(PURLS) report lightning_logs/$(SPLIT) $(wildcard lightning_logs/$(SPLIT)-global)

SWEEP ?= hparams
SWEEP_FILE := lightning_logs/sweeps/$(SWEEP)-$(SPLIT)

sweep: install ## Create a W&B sweep (SWEEP=hparams|partitioner, experiments/sweeps/) over SPLIT; prints the agent command
	@test -f experiments/sweeps/$(SWEEP).yaml || { echo "no experiments/sweeps/$(SWEEP).yaml"; exit 1; }
	@mkdir -p lightning_logs/sweeps
	@recipe=$$($(PURLS) configs $(SPLIT) --recipe); \
	sed -e "s#experiments/demo.yaml#experiments/$$recipe.yaml#" -e 's#demo_15_5#$(SPLIT)#' \
	  experiments/sweeps/$(SWEEP).yaml > $(SWEEP_FILE).yaml
	@$(BIN)/wandb sweep --project purls-pl --name $(SWEEP)-$(SPLIT) $(SWEEP_FILE).yaml 2>&1 | tee $(SWEEP_FILE).log
	@agent=$$(grep -o 'wandb agent [^ ]*' $(SWEEP_FILE).log | tail -1); \
	if [ -z "$$agent" ]; then echo "no sweep was created (see above; \`$(BIN)/wandb login\` first)"; exit 1; fi; \
	echo "Start agents from this directory (each runs trials one after another; --count N stops after N):"; \
	echo "  PATH=$(CURDIR)/$(BIN):\$$PATH $$agent"

test: install ## Run the test suite (fast tests; CI runs this)
	$(BIN)/python -m pytest -m "not slow" --durations=15 $(PYTEST_ARGS)

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
