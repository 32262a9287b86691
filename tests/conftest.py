"""Shared fixtures: an isolated Airflow home, and a fresh store on SQLite and on PostgreSQL."""

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from helpers import FAKE_OSSBSS_CONN, PG_URL_ENV, ROOT, StoreTarget, oss_for, pg_url

# Before anything imports Airflow: a private Airflow home with our DAGs and plugins, no examples.
_HOME = Path(tempfile.mkdtemp(prefix="usergroup-test-airflow-"))
os.environ.update({
    "AIRFLOW_HOME": str(_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "PYTHONWARNINGS": "ignore::UserWarning",
})
os.environ.pop("AIRFLOW_CONN_USERGROUP_DEFAULT", None)
os.environ.pop("AIRFLOW_CONN_USERGROUP_OSSBSS", None)
for _knob in [k for k in os.environ if k.startswith("USERGROUP_") and k != PG_URL_ENV]:  # the defaults, not the shell's
    os.environ.pop(_knob)


def pytest_sessionfinish(session, exitstatus):
    subprocess.run(["rm", "-rf", str(_HOME)], check=False)


@pytest.fixture(autouse=True)
def _settings_of_this_test():
    """Settings are read once per process: each test reads them anew (and `knobs` sets them)."""
    from usergroup.settings import settings

    settings.cache_clear()
    yield
    settings.cache_clear()


@pytest.fixture
def knobs(monkeypatch):
    """Set `USERGROUP_*` environment variables (None: unset) as a new process would read them."""
    from usergroup.settings import settings

    def set_(**env):
        for name, value in env.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        settings.cache_clear()

    return set_


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    return _HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home):
    """Airflow's metadata database (SQLite in the private home), migrated once."""
    result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return airflow_home / "airflow.db"


@pytest.fixture(params=["sqlite", "postgres"])
def store_target(request, tmp_path):
    """A fresh, empty (not migrated) store on each database; PostgreSQL gets its own schema, dropped after."""
    if request.param == "sqlite":
        yield StoreTarget("sqlite", f"sqlite:///{tmp_path / 'store.db'}", "usergroup")
        return
    url = pg_url()
    if not url:
        pytest.skip(f"{PG_URL_ENV} not set")
    target = StoreTarget("postgres", url.replace("postgresql://", "postgresql+psycopg2://", 1),
                         f"ug_test_{secrets.token_hex(4)}")
    yield target
    from sqlalchemy import create_engine, text

    engine = create_engine(target.url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{target.db_schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def store(store_target, monkeypatch):
    """A migrated store with the fake OSS/BSS's tables beside it, also reachable as the `usergroup_default`
    Airflow connection; the `usergroup_ossbss` connection names the fake (as `usergroup db upgrade` and `make run`
    have it)."""
    from usergroup.store.migrate import upgrade
    from usergroup.store.repository import Store

    engine = store_target.engine()
    upgrade(engine)
    store = Store(engine)
    oss_for(store).upgrade()
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_DEFAULT", store_target.conn_json)
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_OSSBSS", FAKE_OSSBSS_CONN)
    yield store
    engine.dispose()


@pytest.fixture
def oss(store):
    return oss_for(store)
