# Two commands on a fresh machine: `make run` and `make test`. Everything else is optional.
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test test-pulsar chaos bench lint typecheck format clean lock contract herramientas

# The service (editable, with its test tools) and, beside it, the development tooling in devtools/
# (embedded servers, simulator, bench, chaos): the production image installs the service alone.
# Every third-party package comes from requirements/dev.lock, pinned with hashes; the image's
# requirements/service.lock pins the same versions (`make lock` writes both). setuptools reports every
# editable install in a `!!` block that says nothing to act on here: PYTHONWARNINGS hides that one.
$(STAMP): setup.cfg pyproject.toml devtools/pyproject.toml requirements/dev.lock
	@test -n "$(PYTHON)" || { echo "pagos_worker needs Python 3.11 or newer on PATH" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/dev.lock
	PYTHONWARNINGS="ignore:Editable installation:UserWarning" \
		$(BIN)/python -m pip install --quiet --no-deps -e '.[dev]' -e ./devtools
	touch $@

install: $(STAMP)

FALLAS ?=
BROKER ?= pulsar-lite
run: $(STAMP)  ## the service on the embedded default (PostgreSQL, pulsar-lite, Stripe simulator under .data/); FALLAS=atencion|lenta|caida; BROKER=pulsar for Apache Pulsar
	PAGOS_LOG_FORMAT=$${PAGOS_LOG_FORMAT:-console} $(BIN)/pagos-dev run --broker $(BROKER) $(if $(FALLAS),--fallas $(FALLAS))

test: $(STAMP)  ## every test; starts its own PostgreSQL and broker unless PAGOS_TEST_*_URL are set
	$(BIN)/pytest

herramientas: $(STAMP)  ## build the pinned Go tools (kustomize, stripe-mock) with go install, once; the tests do it on demand
	$(BIN)/pagos-dev herramientas

# The broker tests (contract suites, dead letters, e2e, the short chaos run) against Apache Pulsar
# standalone instead of pulsar-lite. Java 17 and Maven: the first run assembles the broker from Maven
# Central into ~/.cache/pagos-dev (a few minutes), later runs start it from there.
test-pulsar: $(STAMP)  ## the broker conformance run on Apache Pulsar (Java 17 and Maven needed)
	$(BIN)/pytest -m broker --broker pulsar

CHAOS_RUNS ?= 1
chaos: $(STAMP)  ## the full chaos suite; CHAOS_RUNS=3 for three runs in a row (reports in chaos-results/)
	$(BIN)/pagos-dev chaos --repeticiones $(CHAOS_RUNS)

BENCH_ARGS ?=
bench: $(STAMP)  ## every pipeline scenario (5–10 min); BENCH_ARGS="cpu --pagos 50000" for fewer; JSON in bench-results/
	$(BIN)/pagos-dev bench pipeline $(BENCH_ARGS)

contract: $(STAMP)  ## regenerate the AsyncAPI document, the JSON Schemas and the OpenAPI from the contract's models, and deploy/prometheus/prometheusrule.yaml from the alert rules
	$(BIN)/pagos-dev contract

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

UV_COMPILE = $(BIN)/uv pip compile --universal --python-version 3.11 --generate-hashes --no-header \
	--annotation-style line --quiet
lock: $(STAMP)  ## re-resolve requirements/*.lock after a dependency changes in setup.cfg or devtools/ (build.lock: the image's build backend)
	$(UV_COMPILE) requirements/dev.in --no-emit-package pagos-worker --no-emit-package pagos-worker-dev \
		-o requirements/dev.lock
	$(UV_COMPILE) setup.cfg -c requirements/dev.lock -o requirements/service.lock
	$(UV_COMPILE) requirements/build.in -o requirements/build.lock

clean:
	rm -rf $(VENV) .data .mypy_cache .ruff_cache .pytest_cache
