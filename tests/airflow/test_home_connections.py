"""The Airflow home's connections: the file module (no Airflow) and the secrets backend over it."""

import json
import logging
import re
import stat
import subprocess
import sys

import pytest

from helpers import ROOT
from usergroup.airflow.home_connections import HomeConnections
from usergroup.airflow.home_file import (
    HomeConnectionsError,
    connections_path,
    read_connections,
    set_connection,
    set_option,
    write_connections,
)
from usergroup.airflow.hook import StoreConnectionError, UserGroupHook

STORE = json.dumps({"conn_type": "sqlite", "host": "/x/usergroup.db"})


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.delenv("AIRFLOW_CONN_USERGROUP_DEFAULT", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_USERGROUP_OSSBSS", raising=False)
    return tmp_path


def test_the_file_is_written_atomically_mode_0600(home):
    path = connections_path()
    assert path == home / "connections.json"
    write_connections(path, {"usergroup_default": STORE})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_connections(path) == {"usergroup_default": STORE}
    assert [p.name for p in home.iterdir()] == ["connections.json"]  # no temporary file left
    assert set_connection(path, "usergroup_default", "sqlite:///other", only_if_missing=True) is False
    assert read_connections(path)["usergroup_default"] == STORE
    assert set_connection(path, "usergroup_default", "sqlite:///other") is True
    assert read_connections(path)["usergroup_default"] == "sqlite:///other"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_missing_file_is_no_connections(home):
    assert read_connections(home / "connections.json") == {}
    assert HomeConnections().get_conn_value("usergroup_default") is None


def test_the_file_is_used(home):
    write_connections(connections_path(), {"usergroup_default": STORE})
    conn = HomeConnections().get_connection("usergroup_default")
    assert (conn.conn_type, conn.host) == ("sqlite", "/x/usergroup.db")


def test_the_environment_wins(home, monkeypatch):
    write_connections(connections_path(), {"usergroup_default": STORE})
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_DEFAULT", "sqlite:////from/env.db")
    assert HomeConnections().get_conn_value("usergroup_default") == "sqlite:////from/env.db"


def test_an_unknown_conn_id_returns_none(home):
    write_connections(connections_path(), {"usergroup_default": STORE})
    assert HomeConnections().get_conn_value("nope") is None
    assert HomeConnections().get_connection("nope") is None


def test_bad_json_names_the_file(home):
    path = connections_path()
    path.write_text("{not json")
    with pytest.raises(HomeConnectionsError, match=str(path)):
        HomeConnections().get_conn_value("usergroup_default")
    path.write_text("[1]")
    with pytest.raises(HomeConnectionsError, match=f"{path} is not a JSON object"):
        read_connections(path)


def test_set_option_keeps_the_rest_of_airflow_cfg(tmp_path):
    cfg = tmp_path / "airflow.cfg"
    cfg.write_text("[core]\ndags_folder = /a\n\n[secrets]\nbackend =\nbackend_kwargs =\n\n[database]\nx = 1\n")
    set_option(cfg, "secrets", "backend", "usergroup.airflow.home_connections.HomeConnections")
    set_option(cfg, "core", "load_examples", "False")
    set_option(cfg, "api", "port", "1")
    text = cfg.read_text()
    assert "[secrets]\nbackend = usergroup.airflow.home_connections.HomeConnections\nbackend_kwargs =\n" in text
    assert "[core]\nload_examples = False\ndags_folder = /a\n" in text
    assert "[database]\nx = 1\n" in text and text.endswith("[api]\nport = 1\n")


def _airflow_conn(home, *code, env_conn=None):
    """A fresh process with only AIRFLOW_HOME (and maybe the export): what the backend named in airflow.cfg gives."""
    env = {"AIRFLOW_HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "ignore"}
    if env_conn:
        env["AIRFLOW_CONN_USERGROUP_DEFAULT"] = env_conn
    return subprocess.run([sys.executable, "-c", "\n".join(code)], env=env, capture_output=True, text=True,
                          timeout=300)


def test_with_only_airflow_home_the_hook_finds_the_store_and_an_export_wins(home):
    subprocess.run([sys.executable, str(ROOT / "scripts" / "homeconn.py"), "setup"], check=True,
                   env={"AIRFLOW_HOME": str(home), "PATH": "/usr/bin:/bin"})
    assert stat.S_IMODE((home / "connections.json").stat().st_mode) == 0o600
    # a new home's airflow.cfg is Airflow's own, with its secrets: without the JWT's, every task is refused
    assert re.search(r"^jwt_secret = \S", (home / "airflow.cfg").read_text(), re.M)
    assert json.loads(read_connections(home / "connections.json")["usergroup_ossbss"]) == {
        "conn_type": "usergroup_fake_ossbss"}
    code = ("from usergroup.airflow.hook import UserGroupHook",
            "print(UserGroupHook().url_and_schema[0].database)")
    found = _airflow_conn(home, *code)
    assert found.returncode == 0, found.stderr[-2000:]
    assert found.stdout.strip() == str(home / "usergroup.db")
    exported = _airflow_conn(home, *code, env_conn="sqlite:///from/env.db")
    assert exported.stdout.strip() == "/from/env.db", exported.stderr[-2000:]


def test_a_bad_file_still_fails_naming_usergroup_default(home, monkeypatch, caplog):
    """No silent fallback: a file that cannot be read leaves the connection undefined, the error names it."""
    (home / "connections.json").write_text("{not json")
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND", "usergroup.airflow.home_connections.HomeConnections")
    import airflow.configuration as configuration
    from airflow.configuration import initialize_secrets_backends

    monkeypatch.setattr(configuration, "secrets_backend_list", initialize_secrets_backends())
    assert any(isinstance(b, HomeConnections) for b in configuration.secrets_backend_list)
    with caplog.at_level(logging.ERROR), \
            pytest.raises(StoreConnectionError, match="the Airflow connection 'usergroup_default' is not defined"):
        _ = UserGroupHook().engine
