"""`make bench`'s own code that writes to the store: it seeds as the store's mappings are now (a bench that breaks
is found here, not after its first eight minutes)."""

import os
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text

from helpers import ROOT, pg_url


@pytest.mark.parametrize("store_target", ["postgres"], indirect=True)
def test_the_bench_fills_the_store_with_subscriptions_the_store_reads(store, store_target):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench import fill_store

    from usergroup.settings import settings

    fill_store(store_target.url, store_target.db_schema, str(settings().default_customer_id), 25)
    with store.transaction() as repo:
        subs = repo.list_subscriptions()
    assert len(subs) == 25 and all(s.status == "active" and s.user_group.group_id >= 10_000_000 for s in subs)


def test_the_bench_parses_the_dag_file_as_a_task_process_finds_it_after_the_preload(airflow_home):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench import parse_seconds

    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins")}
    assert 0 < parse_seconds(ROOT / "dags" / "create_user_group.py", env, preloaded=True) < 60


@pytest.mark.parametrize("store_target", ["postgres"], indirect=True)
def test_bulk_cost_runs_every_task_of_a_bulk_run_in_a_schema_it_drops(store_target):
    url = pg_url()
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bulk_cost.py"), url, "--items", "40",
                          "--profile", "set_status", "--top", "5"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = {line.split("|")[1].strip(): line for line in out.stdout.splitlines() if line.startswith("| ")}
    assert {"create_subscription", "set_status", "done", "announce", "all"} <= set(rows)
    assert "INSERT INTO" in out.stderr and "function calls" in out.stderr  # the profiled task's statements
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM information_schema.schemata "
                                 "WHERE schema_name LIKE 'bulk_cost_%'")).scalar_one() == 0
    engine.dispose()
