"""Shared fixtures: an isolated Airflow home, and a fresh store on SQLite and on PostgreSQL."""

import json
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PG_URL_ENV = "USERGROUP_TEST_DATABASE_URL"

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
os.environ.pop("USERGROUP_FAKE_OSS_FAIL", None)


def pytest_sessionfinish(session, exitstatus):
    subprocess.run(["rm", "-rf", str(_HOME)], check=False)


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    return _HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home):
    """Airflow's metadata database (SQLite in the private home), migrated once."""
    result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return airflow_home / "airflow.db"


def pg_url() -> str | None:
    url = os.environ.get(PG_URL_ENV)
    if not url and os.environ.get("CI"):
        pytest.fail(f"{PG_URL_ENV} is not set: CI must run the PostgreSQL half of the store suite")
    return url


class StoreTarget:
    """One fresh store: its SQLAlchemy URL, its db_schema and the Airflow connection that reaches it."""

    def __init__(self, kind: str, url: str, db_schema: str):
        self.kind, self.url, self.db_schema = kind, url, db_schema

    @property
    def conn_json(self) -> str:
        from sqlalchemy.engine import make_url

        u = make_url(self.url)
        if self.kind == "sqlite":
            return json.dumps({"conn_type": "sqlite", "host": u.database})
        return json.dumps({"conn_type": "postgres", "host": u.host, "port": u.port, "login": u.username,
                           "password": u.password or "", "schema": u.database,
                           "extra": {"db_schema": self.db_schema}})

    def engine(self):
        from usergroup.store.engine import create_store_engine

        return create_store_engine(self.url, self.db_schema)


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
    """A migrated store, also reachable as the `usergroup_default` Airflow connection."""
    from usergroup.store.migrate import upgrade
    from usergroup.store.repository import Store

    engine = store_target.engine()
    upgrade(engine)
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_DEFAULT", store_target.conn_json)
    yield Store(engine)
    engine.dispose()


def oss_for(store):
    """The fake OSS/BSS beside a store (its own table on PostgreSQL, its own file beside SQLite's)."""
    from usergroup.provisioning import FakeOssBss
    from usergroup.store.engine import mapped_schema

    return FakeOssBss(store.engine.url, mapped_schema(store.engine) or "usergroup")


@pytest.fixture
def oss(store):
    return oss_for(store)
