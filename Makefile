# modelops-mlc: `make demo` runs the model life cycle on one machine, `make test` runs the tests.
# Both set up what they need: a .venv with the package, the engine jar (Maven), bpmnlint (npm).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export MLC_HOME ?= $(CURDIR)/.mlc
PYTEST_ARGS ?=

.PHONY: setup engine lint-tools test demo down bench bench-peers bench-smoke clean

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

# The benchmarks' peers (the `bench` extra: Evidently, which needs pandas < 3, and MLServer) live in their own venv.
BENCH_VENV ?= .venv-bench
BENCH_ENV  := MLC_BENCH_PEER_PYTHON=$(CURDIR)/$(BENCH_VENV)/bin/python

bench-peers:
	@if [ ! -f $(BENCH_VENV)/.installed ] || [ pyproject.toml -nt $(BENCH_VENV)/.installed ]; then \
	  ( $(PYTHON) -m venv $(BENCH_VENV) && \
	    $(PYTHON) -c 'import tomllib; d = tomllib.load(open("pyproject.toml", "rb")); print("\n".join(d["project"]["optional-dependencies"]["bench"]))' > $(BENCH_VENV)/requirements.txt && \
	    $(BENCH_VENV)/bin/pip install -q --upgrade pip && \
	    $(BENCH_VENV)/bin/pip install -q -r $(BENCH_VENV)/requirements.txt && touch $(BENCH_VENV)/.installed ) \
	  || echo "bench: cannot set up $(BENCH_VENV); the drift and serving benchmarks will report Evidently and MLServer unavailable"; \
	fi
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix bench/js --no-audit --no-fund --loglevel=error \
	  || echo "bench: npm ci failed in bench/js; worker_throughput will report the JS client unavailable"; \
	else echo "bench: npm not found; worker_throughput will report the JS client unavailable"; fi

bench: setup engine bench-peers
	$(BENCH_ENV) $(BIN)/python -m bench.run

bench-smoke: setup engine bench-peers
	$(BENCH_ENV) $(BIN)/python -m bench.run --smoke

clean:
	rm -rf $(VENV) $(BENCH_VENV) engine/target .mlc .pytest_cache tests/bpmnlint/node_modules

# The two-node engine cluster over PostgreSQL: 200 life cycles, one node killed with -9 mid-run
# (a 20 life cycle form of it runs in `make test`).
.PHONY: test-cluster
test-cluster: setup engine
	$(BIN)/pytest -m cluster tests/integration/scaleout $(PYTEST_ARGS)

# Secure defaults on an engine of their own with auth and authorization on; the full form (marker
# security) adds deploy-with-test with a reviewer's approval to the secret-leak life cycle.
.PHONY: test-security
test-security: setup engine
	$(BIN)/pytest -m "security or not security" tests/integration/security $(PYTEST_ARGS)

# The fault suite: every scenario of tests/faults, the full forms (marker faults) with the short
# ones that `make test` runs; it writes its JSON summary to $(MLC_HOME)/reliability/faults.json.
.PHONY: test-faults soak
test-faults: setup engine
	$(BIN)/pytest -m "faults or not faults" tests/faults $(PYTEST_ARGS)

# Soak: 2,000 back-test life cycles over about 10 minutes, the worker restarted every minute
# (bench/soak.py; figures in bench/results/soak.json). SOAK_ARGS=--smoke for a one-minute run.
SOAK_ARGS ?=
soak: setup engine
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

# Bad input: many more hypothesis examples against the CLI and the model server, and the 1 GB
# file batch scoring must stream (`make test` runs a few dozen examples and skips the 1 GB file).
.PHONY: test-fuzz test-bigfile
test-fuzz: setup engine
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest --timeout=7200 tests/fuzz $(PYTEST_ARGS)

test-bigfile: setup
	$(BIN)/pytest -m bigfile tests/unit/jobs/test_bad_data.py $(PYTEST_ARGS)
