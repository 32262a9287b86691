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
# The store and the OSS/BSS: the usergroup_default and usergroup_ossbss connections live in the Airflow home
# ($(AIRFLOW_HOME)/connections.json, read by the secrets backend its airflow.cfg names; scripts/homeconn.py), so
# `usergroup ...` and `airflow ...` find them with only AIRFLOW_HOME set. `make run` writes the defaults there
# (the embedded SQLite store $(AIRFLOW_HOME)/usergroup.db, the fake OSS/BSS) where none is set. An
# AIRFLOW_CONN_USERGROUP_DEFAULT/_OSSBSS given to make still wins (and then no default store is written).
ifneq ($(origin AIRFLOW_CONN_USERGROUP_DEFAULT),undefined)
export AIRFLOW_CONN_USERGROUP_DEFAULT
HOMECONN_STORE := --no-store
endif
ifneq ($(origin AIRFLOW_CONN_USERGROUP_OSSBSS),undefined)
export AIRFLOW_CONN_USERGROUP_OSSBSS
endif

# NAME is user text: never expanded by make, never pasted into a shell line (see scripts/run_create_user_group.py).
unexport NAME
run: export USERGROUP_RUN_NAME = $(value NAME)
run: export USERGROUP_RUN_NAME_SET = $(if $(filter undefined,$(origin NAME)),,1)
# `make run` keeps the embedded fake OSS/BSS, whatever `make up` pointed the home's connection at (its SCIM server,
# which may not be running); an AIRFLOW_CONN_USERGROUP_OSSBSS given to make still wins.
run: export AIRFLOW_CONN_USERGROUP_OSSBSS ?= {"conn_type": "usergroup_fake_ossbss"}
# `make run` runs in-process (airflow dags test) on an SQLite metadata database of its own, whether or not
# `make up` (whose Airflow database is a private PostgreSQL pinned in the home's airflow.cfg) is running.
run airflow-home: export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN ?= sqlite:///$(abspath $(AIRFLOW_HOME))/airflow.db

PORT ?= 8080

.PHONY: venv airflow-home run up down test test-fast compose-test compose-images browser bench bench-ui lint clean

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
	@# after the migration, which writes the home's airflow.cfg with its own secrets (the execution API's JWT)
	@$(BIN)/python scripts/homeconn.py setup $(HOMECONN_STORE) --dags-folder $(CURDIR)/dags --plugins-folder $(CURDIR)/plugins
	@$(BIN)/usergroup db upgrade >&2

run: airflow-home
	@$(BIN)/python scripts/run_create_user_group.py

# A local Airflow (LocalExecutor, its database a private PostgreSQL in the home, tuned for latency) on
# 127.0.0.1:$(PORT); `make down` stops it.
up: venv
	@$(BIN)/python scripts/devstack.py up --port $(PORT)

down:
	@test ! -x $(BIN)/python || $(BIN)/python scripts/devstack.py down

# Everything: ruff, the import contracts, then every test, the live stacks and the browser included: the rest on
# two workers, then the live tests (marker live) one stack at a time, most modules on one shared stack. Both tiers
# are CPU-bound: run beside each other on 2 cores the suite took longer (docs/design.md#the-tests).
test: venv browser
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -m "not live" -n 2 $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m live $(PYTEST_ARGS)

# The edit-test loop: everything but the live stacks (marker live) and the tests that run DAGs through Airflow
# (marker slow: `airflow dags test`, `dag.test()`, `make run`), on two workers.
test-fast: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -m "not live and not slow" -n 2 $(PYTEST_ARGS)

# The compose deployment in containers (also in `make test`): Docker's engine and, where no registry is reachable,
# stand-ins for the images it names (scripts/compose_stack.py), then up, a run, a killed worker, scale, down -v.
compose-test: venv
	$(BIN)/python -m pytest tests/deploy/test_compose_up.py $(PYTEST_ARGS)

# Only the engine and the stand-in images (as root, from Debian's packages and PyPI).
compose-images: venv
	$(BIN)/python scripts/compose_stack.py engine >/dev/null
	$(BIN)/python scripts/compose_stack.py images

# The browser test drives a headless Chromium: Debian's (installed here if apt can), else Playwright's own.
browser: venv
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "make: installing Debian's chromium for the browser test" >&2; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	elif $(BIN)/playwright install chromium >&2; then :; \
	else echo "make: the browser test needs Chromium: 'apt-get install chromium' (Debian) or '$(BIN)/playwright install chromium'" >&2; exit 1; fi

# A benchmark, not a test: needs PostgreSQL (USERGROUP_BENCH_DATABASE_URL, default the local server).
# `make bench SCALE_ROWS=1000000` measures the create with a million subscriptions in the store (seeding takes
# minutes); BULK sets the bulk run's size (10,000), BULK_LARGE the large run's (100,000 names from a file; 0: none).
bench: venv
	BENCH_SCALE_ROWS=$(or $(SCALE_ROWS),100000) BENCH_BULK=$(or $(BULK),10000) \
		BENCH_BULK_LARGE=$(or $(BULK_LARGE),100000) $(BIN)/python benchmarks/bench.py

# Only the Subscriptions page's load time, with 100,000 subscriptions in the store (a few minutes).
bench-ui: venv
	BENCH_ONLY=ui $(BIN)/python benchmarks/bench.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

# Also the private PostgreSQL's data, wherever it lives (as root: a folder under /var/tmp).
clean:
	@test ! -x $(BIN)/python || $(BIN)/python scripts/devstack.py down --purge
	rm -rf $(VENV) $(CURDIR)/.airflow
