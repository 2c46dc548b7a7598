# Tara: `make run` sets everything up and serves; `make test` runs the suite. Both are fast once set up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup run test bench bench-webrtc doctor clean

$(STAMP): pyproject.toml
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	@echo "Installing Python packages (first time: a few minutes; llama.cpp compiles once and is cached by pip)"
	$(BIN)/pip install --progress-bar on -e '.[dev]'
	@touch $@

setup: $(STAMP)

run: setup
	$(BIN)/tara serve

test: setup
	$(BIN)/pytest

bench: setup
	$(BIN)/python scripts/bench_file_latency.py --runs 10

bench-webrtc: setup
	$(BIN)/python scripts/bench_webrtc.py --turns 10 --barge-ins 5

doctor: setup
	$(BIN)/tara doctor

clean:
	rm -rf $(VENV) .pytest_cache
