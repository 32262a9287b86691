"""UserGroupHook: provider-hook shape, connections on both databases, the embedded default."""

import json
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from usergroup.hook import UserGroupHook
from usergroup.store import tables


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
        assert repo.count(tables.products) == 1


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


def test_undefined_connection_falls_back_to_the_embedded_sqlite_file(airflow_home, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_USERGROUP_DEFAULT", raising=False)
    hook = UserGroupHook()
    said = []
    monkeypatch.setattr(type(hook), "log", property(lambda self: SimpleNamespace(info=lambda *a: said.append(a))))
    url, db_schema = hook.url_and_schema
    assert url.database == str(airflow_home / "usergroup.db") and db_schema == "usergroup"
    assert "embedded SQLite store" in said[0][0] and said[0][2] == airflow_home / "usergroup.db"


def test_never_airflow_metadata_db(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_USERGROUP_DEFAULT", raising=False)
    url, _ = UserGroupHook().url_and_schema
    assert not url.database.endswith("airflow.db")


@pytest.mark.parametrize(
    ("conn", "message"),
    [
        ({"conn_type": "mysql", "host": "h"}, "needs a 'postgres' or 'sqlite' connection"),
        ({"conn_type": "sqlite"}, "needs the database file's path"),
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
