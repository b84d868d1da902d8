# One-line wrappers over the styleforge CLI; the logic lives in Python.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
SF      := $(BIN)/styleforge
STAMP   := $(VENV)/.installed
RUN     ?= demo/runs/student
NAME    ?= demo

.PHONY: corpus setup chromium test test-slow test-all lint demo export export-onnx export-tflite export-coreml clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[all,dev]"
	$(MAKE) --no-print-directory chromium
	touch $(STAMP)

# Headless Chromium for the preview page's browser test (Debian's package, as root); skipped
# harmlessly without apt-get or root, and the test then skips with the reason.
chromium:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } \
	  || echo "chromium not installed (needs apt-get as root): the preview browser test will be skipped"

test: setup
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

test-all: setup
	$(BIN)/python -m pytest -q -m "slow or not slow"

lint: setup
	$(BIN)/ruff check styleforge train export runtime benchmarks tests

demo: setup
	$(BIN)/python -m styleforge.cli.demo --out demo

export: setup
	$(SF) export $(RUN) --formats onnx,tflite,coreml --out dist/$(NAME)

export-onnx: setup
	$(SF) export $(RUN) --formats onnx --out dist/$(NAME)-onnx

export-tflite: setup
	$(SF) export $(RUN) --formats tflite --out dist/$(NAME)-tflite

export-coreml: setup
	$(SF) export $(RUN) --formats coreml --out dist/$(NAME)-coreml

corpus: setup
	$(BIN)/python -m styleforge.photo.corpus_build --out data/corpus

clean:
	rm -rf build dist demo .pytest_cache
