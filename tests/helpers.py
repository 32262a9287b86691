"""Test helpers: where the checkout is, the PostgreSQL the tests may use, a store target, its fake OSS/BSS."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PG_URL_ENV = "USERGROUP_TEST_DATABASE_URL"


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


def oss_for(store):
    """The fake OSS/BSS beside a store (its own table on PostgreSQL, its own file beside SQLite's)."""
    from usergroup.provisioning import FakeOssBss
    from usergroup.store.engine import mapped_schema

    return FakeOssBss(store.engine.url, mapped_schema(store.engine) or "usergroup")


def dags_test(conf: str | None, dag_id: str = "create_user_group") -> subprocess.CompletedProcess:
    """`airflow dags test DAG_ID --conf CONF`, in the test session's Airflow home."""
    args = [sys.executable, "-m", "airflow", "dags", "test", dag_id]
    if conf is not None:
        args += ["--conf", conf]
    return subprocess.run(args, capture_output=True, text=True, env=os.environ.copy(), timeout=300)
