"""`make up`'s components run on the home's connections: the ones `usergroup ...` with only AIRFLOW_HOME reads."""

import fcntl
import json
import os
import socket
import subprocess
import sys
import time

import homeconn

from devstack import Stack, wants_scim
from helpers import ROOT

PG_STORE = "postgresql://postgres@127.0.0.1:5432/elsewhere?db_schema=usergroup"


def test_the_components_get_the_homes_connections(tmp_path, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_USERGROUP_DEFAULT", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_USERGROUP_OSSBSS", raising=False)
    path = homeconn.connections_path(tmp_path)
    homeconn.set_connection(path, "usergroup_default", PG_STORE)  # what `homeconn.py set` writes
    stack = Stack(tmp_path, port=1)
    homeconn.setup(tmp_path, None, None, False, {})  # what `up` does first: defaults only where none is set
    stack.use_home_connections()
    assert stack.env["AIRFLOW_CONN_USERGROUP_DEFAULT"] == PG_STORE
    assert json.loads(stack.env["AIRFLOW_CONN_USERGROUP_OSSBSS"]) == {"conn_type": "usergroup_fake_ossbss"}


def test_an_export_wins_over_the_homes_connection(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_DEFAULT", "sqlite:////given.db")
    homeconn.set_connection(homeconn.connections_path(tmp_path), "usergroup_default", PG_STORE)
    stack = Stack(tmp_path, port=1)
    stack.use_home_connections()
    assert stack.env["AIRFLOW_CONN_USERGROUP_DEFAULT"] == "sqlite:////given.db"


def test_a_store_given_to_the_stack_wins_over_the_homes_connection(tmp_path, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_USERGROUP_DEFAULT", raising=False)
    homeconn.set_connection(homeconn.connections_path(tmp_path), "usergroup_default", PG_STORE)
    stack = Stack(tmp_path, port=1, overrides={"AIRFLOW_CONN_USERGROUP_DEFAULT": "sqlite:////test.db"})
    stack.use_home_connections()
    assert stack.env["AIRFLOW_CONN_USERGROUP_DEFAULT"] == "sqlite:////test.db"


STUBBORN = """
import signal, sys, time
seen = []
def handler(signum, frame):
    seen.append(signum)
    if len(seen) == 2:  # the first SIGTERM lost, as when Airflow's SystemExit lands in a GC callback
        open(sys.argv[1], "w").write("exited on the second SIGTERM")
        sys.exit(0)
signal.signal(signal.SIGTERM, handler)
open(sys.argv[1], "w").write("ready")
while True:
    time.sleep(0.05)
"""


def test_stop_asks_again_when_a_component_ignored_sigterm(tmp_path):
    """A component whose SIGTERM was swallowed is asked again, not left running until it is SIGKILLed."""
    marker = tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-c", STUBBORN, str(marker)], start_new_session=True)
    while not marker.exists() or marker.read_text() != "ready":
        time.sleep(0.05)
    stack = Stack(tmp_path, port=1)
    stack.pids["scheduler"] = proc.pid
    stack.stop("scheduler")
    assert proc.wait(timeout=5) == 0
    assert marker.read_text() == "exited on the second SIGTERM"


def _up(home, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "devstack.py"), "up", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "AIRFLOW_HOME": str(home)})


def test_make_up_on_a_taken_port_says_so_before_starting_anything(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = _up(tmp_path, "--port", str(port))
    assert result.returncode == 1
    assert f"make up: 127.0.0.1:{port} is taken (Address already in use): `PORT=<another> make up`" in result.stderr
    assert not (tmp_path / "stack.json").exists() and not (tmp_path / "airflow.cfg").exists()


def test_a_second_make_up_at_once_refuses_instead_of_racing_the_first(tmp_path):
    """Two at once both failed: the loser's cleanup stopped the private PostgreSQL the other had started."""
    with (tmp_path / "stack.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a `make up` still starting holds it
        result = _up(tmp_path)
    assert result.returncode == 1
    assert f"make up: another `make up` is starting the stack of {tmp_path}" in result.stderr
    assert not (tmp_path / "stack.json").exists()


def test_make_up_starts_a_scim_server_unless_the_ossbss_is_another(tmp_path, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_USERGROUP_OSSBSS", raising=False)
    path = homeconn.connections_path(tmp_path)
    assert wants_scim(tmp_path)  # a new home
    for ours in ({"conn_type": "usergroup_fake_ossbss"},  # the default `make run` writes
                 {"conn_type": "usergroup_scim", "host": "http://127.0.0.1", "port": 1}):  # an earlier make up's
        homeconn.set_connection(path, "usergroup_ossbss", json.dumps(ours))
        assert wants_scim(tmp_path)
    production = {"conn_type": "usergroup_scim", "host": "https://idm.example.org", "password": "t"}
    homeconn.set_connection(path, "usergroup_ossbss", json.dumps(production))
    assert not wants_scim(tmp_path)  # the user's: kept, and no server of ours
    homeconn.set_connection(path, "usergroup_ossbss", json.dumps({"conn_type": "usergroup_fake_ossbss"}))
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_OSSBSS", json.dumps(production))
    assert not wants_scim(tmp_path)  # an export wins
