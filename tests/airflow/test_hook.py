"""UserGroupHook: provider-hook shape, connections on both databases, the embedded default."""

import json
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from helpers import PG_URL_ENV, StoreTarget, pg_url
from usergroup.airflow.hook import StoreConnectionError, UserGroupHook
from usergroup.airflow.tasks import step_task
from usergroup.engine.generic_steps import resync
from usergroup.store import tables
from usergroup.workflows.user_group.create_user_group import create_user_group


def test_provider_hook_attributes():
    assert UserGroupHook.conn_name_attr == "usergroup_conn_id"
    assert UserGroupHook.default_conn_name == "usergroup_default"
    assert UserGroupHook.conn_type and UserGroupHook.hook_name
    assert UserGroupHook().usergroup_conn_id == "usergroup_default"
    assert UserGroupHook(usergroup_conn_id="other").usergroup_conn_id == "other"


def test_no_io_in_init(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("__init__ must not look up the connection")

    monkeypatch.setattr(UserGroupHook, "get_connection", classmethod(boom))
    UserGroupHook()


def test_reaches_the_store_through_the_connection(store, store_target):
    hook = UserGroupHook()
    url, db_schema = hook.url_and_schema
    assert url.get_backend_name() == {"sqlite": "sqlite", "postgres": "postgresql"}[store_target.kind]
    assert db_schema == store_target.db_schema
    assert hook.engine is hook.engine and hook.get_conn() is hook.engine  # built once per hook
    with hook.store.transaction() as repo:
        assert repo.count(tables.products) == 3


def test_sqlite_uri_with_three_slashes(tmp_path, monkeypatch):
    path = tmp_path / "s.db"
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_DEFAULT", f"sqlite://{path}")
    url, _ = UserGroupHook().url_and_schema
    assert url.database == str(path)


def test_postgres_uri_with_db_schema_extra(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_UG_PG", "postgresql://u:secret@127.0.0.1:5432/mydb?db_schema=ug_other")
    url, db_schema = UserGroupHook(usergroup_conn_id="ug_pg").url_and_schema
    assert (url.drivername, url.host, url.port, url.database, url.username) == (
        "postgresql+psycopg2", "127.0.0.1", 5432, "mydb", "u")
    assert db_schema == "ug_other"


def test_an_undefined_connection_is_an_error_naming_it(monkeypatch):
    """No silent fallback to a local file: a worker without the connection fails, it does not split the data."""
    monkeypatch.delenv("AIRFLOW_CONN_USERGROUP_DEFAULT", raising=False)
    with pytest.raises(StoreConnectionError, match="the Airflow connection 'usergroup_default' is not defined.*"
                                                   "AIRFLOW_CONN_USERGROUP_DEFAULT"):
        _ = UserGroupHook().engine


def test_the_task_fails_at_once_without_the_connection(monkeypatch):
    """The task body (as Airflow calls it) fails without retry, naming the connection."""
    monkeypatch.delenv("AIRFLOW_CONN_USERGROUP_DEFAULT", raising=False)
    body = step_task(resync, create_user_group, task_id="resync").function
    with pytest.raises(AirflowFailException, match="resync: the Airflow connection 'usergroup_default' is not"):
        body({"process_id": "x"}, params={}, dag_run=SimpleNamespace(dag_id="d", run_id="r"),
             ti=SimpleNamespace(try_number=1, map_index=-1))


def test_postgres_options_reach_the_engine(monkeypatch):
    """Every libpq option of the connection (sslmode, options, keepalives...) reaches the engine's URL; our own
    `db_schema` does not (libpq would refuse it)."""
    monkeypatch.setenv("AIRFLOW_CONN_UG_TLS", "postgresql://u:pw@db.example:5432/mydb?sslmode=require"
                       "&options=-c%20statement_timeout%3D4321&keepalives_idle=30&db_schema=ug_tls")
    hook = UserGroupHook(usergroup_conn_id="ug_tls")
    url, db_schema = hook.url_and_schema
    assert dict(url.query) == {"sslmode": "require", "options": "-c statement_timeout=4321", "keepalives_idle": "30"}
    assert db_schema == "ug_tls" and hook.engine.url.query["sslmode"] == "require"


def test_postgres_options_take_effect_on_a_real_server(monkeypatch):
    if not (url := pg_url()):
        pytest.skip(f"{PG_URL_ENV} not set")
    conn = json.loads(StoreTarget("postgres", url, "usergroup").conn_json)
    conn["extra"].update(options="-c statement_timeout=4321", application_name="usergroup-hook-test")
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_DEFAULT", json.dumps(conn))
    with UserGroupHook().engine.connect() as c:
        assert c.execute(text("SHOW statement_timeout")).scalar() == "4321ms"
        assert c.execute(text("SHOW application_name")).scalar() == "usergroup-hook-test"
    conn["extra"]["sslmode"] = "require"  # this server has no TLS: libpq must refuse, not connect without it
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_DEFAULT", json.dumps(conn))
    with pytest.raises(OperationalError, match="SSL"):
        UserGroupHook().engine.connect()


def test_the_hook_type_is_true():
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    assert UserGroupHook.conn_type == PostgresHook.conn_type  # it takes a postgres connection (sqlite: embedded)


@pytest.mark.parametrize(
    ("conn", "message"),
    [
        ({"conn_type": "mysql", "host": "h"}, "needs a 'postgres' or 'sqlite' connection"),
        ({"conn_type": "sqlite"}, "needs the database file's path"),
        ({"conn_type": "http", "host": "h"}, "needs a 'postgres' or 'sqlite' connection"),
        ({"conn_type": "postgres", "host": "h", "extra": {"db_schema": "Bad-Name"}}, "not a valid schema name"),
    ],
)
def test_bad_connections_are_named(monkeypatch, conn, message):
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_DEFAULT", json.dumps(conn))
    with pytest.raises(ValueError, match=message):
        _ = UserGroupHook().engine


def test_engine_works_on_both_databases(store_target, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_DEFAULT", store_target.conn_json)
    with UserGroupHook().engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1


def test_the_postgres_url_is_the_providers_without_importing_it(monkeypatch):
    """A plain PostgreSQL connection's URL is built as PostgresHook builds it (the provider is not imported in
    the task process: it costs ~70-100 ms of CPU per task); our copy of its own extras stays equal to it."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from usergroup.airflow.hook import POSTGRES_HOOK_EXTRAS, connection_url

    assert POSTGRES_HOOK_EXTRAS == set(PostgresHook.ignored_extra_options)
    for uri in ("postgresql://u:p%40ss@db.example:6543/mydb?sslmode=require&db_schema=x",
                "postgresql://db.example/mydb", "postgresql://u@h"):
        monkeypatch.setenv("AIRFLOW_CONN_UG_CMP", uri)
        conn = UserGroupHook.get_connection("ug_cmp")
        provider = PostgresHook(connection=conn, sqlalchemy_scheme="postgresql+psycopg2").sqlalchemy_url
        ours = connection_url(conn)
        assert ours.render_as_string(hide_password=False).split("?")[0] == \
            provider.render_as_string(hide_password=False).split("?")[0], uri
        assert dict(provider.query).items() <= dict(ours.query).items()


def test_a_task_process_does_not_import_the_postgres_provider():
    import subprocess
    import sys

    code = ("import os, sys; os.environ['AIRFLOW_CONN_USERGROUP_DEFAULT'] = 'postgresql://u:p@h:5432/d?db_schema=s'\n"
            "from usergroup.airflow.hook import UserGroupHook\n"
            "UserGroupHook().url_and_schema\n"
            "print('airflow.providers.postgres.hooks.postgres' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr[-2000:]
