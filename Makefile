# modelops-mlc: `make demo` runs the model life cycle on one machine, `make test` runs the tests.
# Both set up what they need: a .venv with the package, the engine jar (Maven), bpmnlint (npm).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export MLC_HOME ?= $(CURDIR)/.mlc
PYTEST_ARGS ?=

.PHONY: setup engine lint-tools test demo down bench bench-smoke clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

engine: setup
	$(BIN)/mlc engine build

lint-tools: tests/bpmnlint/node_modules/.installed

tests/bpmnlint/node_modules/.installed: tests/bpmnlint/package.json
	@if command -v npm >/dev/null 2>&1; then \
	  cd tests/bpmnlint && (npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error) && touch node_modules/.installed; \
	else echo "npm not found: the bpmnlint test will be skipped"; fi

test: setup engine lint-tools
	$(BIN)/pytest $(PYTEST_ARGS)

demo: setup engine
	$(BIN)/python examples/demo.py

down: setup
	$(BIN)/mlc down || $(BIN)/mlc engine stop

bench: setup engine
	$(BIN)/python -m bench.run

bench-smoke: setup engine
	$(BIN)/python -m bench.run --smoke

clean:
	rm -rf $(VENV) engine/target .mlc .pytest_cache tests/bpmnlint/node_modules
