"""`make up`'s components run on the home's connections: the ones `usergroup ...` with only AIRFLOW_HOME reads."""

import json
import subprocess
import sys
import time

import homeconn

from devstack import Stack

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
