# Two entry points: `make demo` and `make test`. Both create .venv and install what they need:
# `make demo` only the demo's packages (the `demo` extra and the collector), `make test` the test
# and lint toolchain (the `test` extra) after checking the system packages (scripts/prereqs.sh).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# One stamp per install set: a venv made by `make demo` is never taken for one with test tools,
# and `make test` after `make demo` installs the rest into the same .venv.
BASE_STAMP := $(VENV)/.base
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test
PROJECTS   := pyproject.toml collector/pyproject.toml
# Every distribution the tests install into clean venvs, downloaded before pytest so that no test
# reaches the registry (tests/support/wheelhouse.py says what goes in; the stamp is its last file).
WHEELHOUSE_STAMP := $(VENV)/wheelhouse/.filled
WHEELHOUSE_INPUTS := $(PROJECTS) tests/wheelhouse.txt collector/tests/support/adot-requirements.txt \
	tests/support/wheelhouse.py
PIP        := $(BIN)/python -m pip install --quiet --disable-pip-version-check
ARGS   ?=

.PHONY: demo test test-sdk-range fuzz lint bench clean prereqs

$(BASE_STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	touch $@

$(DEMO_STAMP): $(BASE_STAMP) $(PROJECTS)
	$(PIP) -e '.[demo]' -e './collector'
	touch $@

$(TEST_STAMP): $(BASE_STAMP) $(PROJECTS)
	$(PIP) -e '.[test]' -e './collector[postgres]'
	touch $@

$(WHEELHOUSE_STAMP): $(BASE_STAMP) $(WHEELHOUSE_INPUTS)
	$(BIN)/python -m tests.support.wheelhouse

prereqs:
	scripts/prereqs.sh

test: prereqs $(TEST_STAMP) $(WHEELHOUSE_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The property-based fuzz tests (marker `fuzz`) with a large budget: 3,000 examples each instead
# of the 30 `make test` runs (profiles in conftest.py). FUZZ_ARGS adds pytest options.
fuzz: $(TEST_STAMP)
	OTEL_XRAY_FUZZ_PROFILE=fuzz $(BIN)/python -m pytest -m fuzz -q --timeout=3600 $(FUZZ_ARGS)

# The library's tests (tests/) against the oldest and newest opentelemetry-* releases the ranges
# in pyproject.toml allow (noxfile.py); .ci/run calls it after `make test`.
test-sdk-range: $(TEST_STAMP)
	$(BIN)/nox --no-color --sessions sdk_oldest sdk_newest

demo: $(DEMO_STAMP)
	$(BIN)/python -m examples.microservices.demo $(ARGS)

# Python sources ruff checks and formats (both packages, their tests, bench, examples).
PY_SOURCES := otel_xray collector tests bench examples conftest.py

# The same three checks as .pre-commit-config.yaml; mypy's scope (both packages) is in pyproject.
lint: $(TEST_STAMP)
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)
	$(BIN)/mypy

bench: $(TEST_STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .demo .pytest_cache .nox
