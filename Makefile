# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint venv clean postgres postgres-stop bench

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy tap_oktopost tests scripts benchmarks

test: lint postgres
	$(BIN)/pytest

# Unit and in-process tests only: seconds, for the edit-test loop.
test-fast: venv
	$(BIN)/pytest -m "not slow"

# The tests' PostgreSQL server on 127.0.0.1:55432 (installs Debian's package as root).
postgres:
	bash scripts/postgres.sh start

postgres-stop:
	bash scripts/postgres.sh stop

demo: venv
	$(BIN)/python scripts/demo.py

clean:
	rm -rf $(VENV) .meltano output

bench: venv
	$(BIN)/python benchmarks/bench.py
