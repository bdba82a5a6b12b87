# Two commands on a fresh machine: `make demo` and `make test`.
# Another Python: `make test PYTHON=python3.13 VENV=.venv-3.13` (a venv of its own).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint venv clean postgres postgres-stop bench test-sdk-next sdk-next-check

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# fakesnow, the Snowflake emulator, needs Python 3.11: below it, its test is left out.
NO_SNOWFLAKE := $(shell $(PYTHON) -c 'import sys; print("" if sys.version_info >= (3, 11) else "--exclude tests/end_to_end/test_snowflake.py --exclude tests/stand_ins/snowflake/")')

lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy $(NO_SNOWFLAKE) tap_oktopost tests scripts benchmarks

# The tests' PostgreSQL server runs on a free port, from this clone's .postgres/,
# only while pytest does. The tests run in parallel, one worker a core (up to 4):
# most of their time is Meltano and its plugins starting.
test: lint
	bash scripts/postgres.sh run $(BIN)/pytest -n auto --maxprocesses 4 --dist worksteal

# Unit and in-process tests only: seconds, for the edit-test loop.
test-fast: venv
	$(BIN)/pytest -m "not slow" -n auto --maxprocesses 4 --dist worksteal

# This clone's server, for running pytest by hand: start prints its port, to give
# pytest as TEST_PG_PORT (installs Debian's package as root if missing).
postgres:
	bash scripts/postgres.sh start

postgres-stop:
	bash scripts/postgres.sh stop

demo: venv
	$(BIN)/python scripts/demo.py

clean:
	-bash scripts/postgres.sh clean
	rm -rf $(VENV) $(NEXT_VENV) .meltano output .postgres

# The next singer-sdk: the pre-release sdk-next.txt pins, in a venv of its own (the
# dev extra's other pins kept; Python 3.11 or later). It runs the fast tests (the
# SDK's standard tests, the SDK contracts, BATCH, state, the plugin definition from
# --about) and the slow ones that run the tap as a process, where the SDK handles
# the command line, signals and exit codes: the Meltano and target tests are left
# out, as Meltano installs the tap with the stable SDK in a venv of its own.
NEXT_VENV ?= .venv-sdk-next
NEXT_BIN := $(NEXT_VENV)/bin
NEXT_STAMP := $(NEXT_VENV)/.installed
NEXT_SLOW := tests/end_to_end/test_sync.py \
	tests/in_process/test_hostile.py::test_an_interrupted_sync_exits_non_zero \
	tests/in_process/test_operator.py::test_after_sigterm_the_record_count_is_what_was_sent \
	tests/end_to_end/test_faults.py::test_killed_syncs_resume_from_their_last_state_losing_nothing \
	tests/end_to_end/test_faults.py::test_a_sync_sending_batch_files_stopped_mid_way_resumes_losing_nothing

$(NEXT_STAMP): pyproject.toml sdk-next.txt
	rm -rf $(NEXT_VENV)
	$(PYTHON) -m venv $(NEXT_VENV)
	$(NEXT_BIN)/pip install --quiet --upgrade pip packaging
	$(NEXT_BIN)/python scripts/sdk_next.py requirements > $(NEXT_VENV)/requirements.txt
	$(NEXT_BIN)/pip install --quiet -e . -r $(NEXT_VENV)/requirements.txt
	touch $(NEXT_STAMP)

test-sdk-next: $(NEXT_STAMP)
	$(NEXT_BIN)/pip show singer-sdk | grep '^Version'
	$(NEXT_BIN)/pytest -n auto --maxprocesses 4 --dist worksteal -m "not slow"
	$(NEXT_BIN)/pytest -n auto --maxprocesses 4 --dist worksteal $(NEXT_SLOW)

# Says whether the registry has a singer-sdk newer than sdk-next.txt's pin.
sdk-next-check: venv
	$(BIN)/python scripts/sdk_next.py check

# The tap against the floor (bench.py), the API calls of a discovery and a sync of
# 150 exports at Oktopost's real rate limit (api_budget.py, minutes), then end to
# end: `meltano run` into this clone's PostgreSQL, started on a free port for the run
# (end_to_end.py installs the plugins if missing). All write benchmarks/results.md.
bench: venv
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/api_budget.py
	bash scripts/postgres.sh run $(BIN)/python benchmarks/end_to_end.py
