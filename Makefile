# gradflow: `make report` (the main job) and `make test` each set up everything they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PRESET ?= quick
JOBS   ?= 2

.DEFAULT_GOAL := help
.PHONY: help setup data train report screenshots test bench lint clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  variables: PRESET=$(PRESET) (quick | tutorial | smoke), JOBS=$(JOBS)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install gradflow with its dev tools

# FashionMNIST from data/, the Debian package or torchvision's download; as root with apt,
# install the Debian package when none of those works (offline machines).
data: $(STAMP) ## prepare FashionMNIST in data/
	@$(BIN)/gradflow data || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's dataset-fashion-mnist"; \
	    (apt-get install -y -qq dataset-fashion-mnist || (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)) >/dev/null \
	      && $(BIN)/gradflow data; \
	  else exit 1; fi; }

# The sweep page's grid shares its default-init runs with the comparison above (the same runs, from the
# cache): it trains only the kaiming column.
train: data ## train (or load) every run the reports read: comparison, case studies, the sweep page's grid
	$(BIN)/gradflow train --act all --preset $(PRESET)
	$(BIN)/gradflow train --case-studies --preset $(PRESET)
	$(BIN)/gradflow sweep --act relu,tanh,sigmoid --init default,kaiming --preset $(PRESET) --name activation-x-init-$(PRESET)

# Rendering reads the run store and trains nothing; `train` above fills the store first.
report: train ## main job: train what is missing, then render reports/index.html
	$(BIN)/gradflow report --preset $(PRESET) --jobs $(JOBS)

screenshots: $(STAMP) ## full-page PNGs of the rendered reports/ in docs/screenshots/ (Chromium)
	$(BIN)/python scripts/screenshots.py --reports reports --out docs/screenshots

test: data ## run the test suite
	$(BIN)/python -m pytest -q

bench: data ## run the benchmarks (ratios measured side by side)
	$(BIN)/python benchmarks/bench_training.py
	@for b in benchmarks/bench_recorder.py benchmarks/bench_report.py benchmarks/bench_diagnosis.py; do \
	  if [ -f $$b ]; then $(BIN)/python $$b || exit 1; fi; done

lint: $(STAMP) ## ruff
	$(BIN)/ruff check gradflow tests benchmarks notebooks scripts

clean: ## remove reports and caches (keeps data/ and checkpoints/)
	rm -rf reports .pytest_cache .ruff_cache
