# Phantom Lab — the two commands of the README are `make demo` and `make test`.
# Both create the virtualenv on first use (python3 -m venv + pip; no conda needed).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# apt-get needs root: sudo when not already root (CI runs as root)
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help setup browser demo test lab lint format bench clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the package with its dev tools

browser:  ## Debian's Chromium (for the report's headless-browser test), if missing
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium and chromium-driver (apt-get)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; }

demo: setup  ## run the main job on a built-in synthetic market, then open reports/index.html
	$(BIN)/phantomlab demo

test: setup browser  ## lint, then the whole test suite (real data, real notebooks, a browser)
	$(BIN)/ruff check research nbrunner tests benchmarks
	$(BIN)/ruff format --check research nbrunner tests benchmarks
	$(BIN)/pytest

lab: setup  ## JupyterLab on the research notebooks (kernel "phantomlab")
	$(BIN)/python -c "from nbrunner import ensure_kernel; ensure_kernel()"
	$(BIN)/jupyter lab notebooks

lint: setup  ## ruff check only
	$(BIN)/ruff check research nbrunner tests benchmarks

format: setup  ## ruff format in place
	$(BIN)/ruff format research nbrunner tests benchmarks
	$(BIN)/ruff check --fix research nbrunner tests benchmarks

bench: setup  ## benchmarks on ../shared/data (ratios vs plain-Python references)
	$(BIN)/python benchmarks/bench_simulator.py
	$(BIN)/python benchmarks/bench_scoring.py
	$(BIN)/python benchmarks/bench_replay.py
	$(BIN)/python benchmarks/bench_stores.py
	$(BIN)/python benchmarks/bench_gates.py
	$(BIN)/python benchmarks/bench_sweep.py
	$(BIN)/python benchmarks/bench_efficacy.py --seeds 1

clean:  ## remove the virtualenv, caches and reports
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis reports
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
