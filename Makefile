# usergroup: set-up, run and test. `make run` and `make test` work on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3.11
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin

# The embedded Airflow: SQLite metadata, no examples, our DAGs and plugins.
AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW_HOME
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE := False
export PYTHONWARNINGS := ignore::UserWarning

# NAME is user text: never expanded by make, never pasted into a shell line (see scripts/run_create_user_group.py).
unexport NAME
run: export USERGROUP_RUN_NAME = $(value NAME)
run: export USERGROUP_RUN_NAME_SET = $(if $(filter undefined,$(origin NAME)),,1)

PORT ?= 8080

.PHONY: venv airflow-home run up down test bench lint clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	@echo "make: installing the pinned requirements into $(VENV)" >&2
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt 2>&1 | { grep -v 'is ignored: it is neither' || true; } >&2
	@$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e . >&2
	@touch $@

# Progress goes to stderr: `make run` prints only the subscription's JSON on stdout.
airflow-home: venv
	@mkdir -p $(AIRFLOW_HOME)
	@echo "make run: Airflow home $(AIRFLOW_HOME): migrating its metadata database" >&2
	@$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || { tail -20 $(AIRFLOW_HOME)/db-migrate.log >&2; exit 1; }
	@$(BIN)/usergroup db upgrade >&2

run: airflow-home
	@$(BIN)/python scripts/run_create_user_group.py

# A local Airflow (SQLite, LocalExecutor, tuned for latency) on 127.0.0.1:$(PORT); `make down` stops it.
up: venv
	@$(BIN)/python scripts/devstack.py up --port $(PORT)

down:
	@test ! -x $(BIN)/python || $(BIN)/python scripts/devstack.py down

test: venv
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# A benchmark, not a test: needs PostgreSQL (USERGROUP_BENCH_DATABASE_URL, default the local server).
bench: venv
	$(BIN)/python benchmarks/bench.py

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) $(CURDIR)/.airflow
