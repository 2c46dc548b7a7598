# Tara: `make run` sets everything up and serves; `make test` runs the suite. Both are fast once set up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# PROFILE=gpu (`make run PROFILE=gpu`) adds vLLM, faiss-gpu and torchaudio and serves config/gpu.yaml.
PROFILE ?= cpu
EXTRAS_cpu := dev,csm
EXTRAS_gpu := dev,csm,gpu
STAMP := $(VENV)/.installed-$(PROFILE)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# llama.cpp compiles for this CPU (-march=native) but without its AMX kernels, which crash on CPUs with AMX
# tiles (tara/core/stages/llm/llamacpp.py: amx_kernels_crash); its repacked AVX-512/AVX2 kernels stay in.
LLAMA_CMAKE_ARGS := -DCMAKE_C_FLAGS=-U__AMX_INT8__ -DCMAKE_CXX_FLAGS=-U__AMX_INT8__

.PHONY: setup run test test-fast lint bench bench-webrtc doctor clean

# moshi (Mimi, for CSM) pins torch<2.10 and huggingface-hub<1.0, so it goes in with --no-deps; its real
# needs are in the csm extra. pyrnnoise (audio.denoise) too: Tara uses only its librnnoise.so, not audiolab & co.
# faiss-gpu and faiss-cpu install the same `faiss` package: gpu keeps the GPU one.
$(STAMP): pyproject.toml
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	@echo "Installing Python packages (first time: a few minutes; llama.cpp compiles once and is cached by pip)"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS) $$CMAKE_ARGS" $(BIN)/pip install --progress-bar on -e '.[$(EXTRAS_$(PROFILE))]'
	$(BIN)/pip install --no-deps moshi==0.2.13
	$(BIN)/pip install --no-deps pyrnnoise==0.4.5
ifeq ($(PROFILE),gpu)
	$(BIN)/pip uninstall -y faiss-cpu
	$(BIN)/pip install --no-deps --force-reinstall faiss-gpu==1.15.1
endif
	@touch $@

setup: $(STAMP)

run: setup
	$(BIN)/tara $(if $(filter gpu,$(PROFILE)),--config config/gpu.yaml) serve

test: setup
	$(BIN)/pytest

# the unit tier: scripted models only (tests/fakes.py), no real model loaded
test-fast: setup
	$(BIN)/pytest tests/unit

# basedpyright reads [tool.basedpyright] in pyproject.toml (basic mode over tara and tests)
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/basedpyright

bench: setup
	$(BIN)/python -m tara.tools.file_bench --runs 10

bench-webrtc: setup
	$(BIN)/tara bench

doctor: setup
	$(BIN)/tara doctor

clean:
	rm -rf $(VENV) .pytest_cache
