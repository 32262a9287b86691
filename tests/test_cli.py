"""The `usergroup` command: db upgrade, subscriptions list/show, in JSON and as text."""

import json
import subprocess
import sys
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from usergroup.cli import main
from usergroup.domain import USER_GROUP_PRODUCT, UserGroupInactive
from usergroup.report import SUBSCRIPTION_COLUMNS
from usergroup.store import tables

USERGROUP = str(Path(sys.executable).parent / "usergroup")


@pytest.fixture
def one_subscription(store):
    sub = UserGroupInactive.from_product_id(USER_GROUP_PRODUCT.product_id, uuid4())
    sub.user_group.group_name = "CLI <Lab> 'ü'"
    pid = uuid4()
    with store.transaction() as repo:
        sub = repo.save_subscription(sub)
        repo.start_process(pid, workflow_name="create_user_group", workflow_target="CREATE", dag_id="d",
                           run_id="r", created_by="manual", input_state={})
        repo.enter_step(pid, "create_subscription")
        repo.link_subscription(pid, sub.subscription_id, "CREATE")
    return sub


def test_db_upgrade_creates_the_store(store_target, monkeypatch, capsys):
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_DEFAULT", store_target.conn_json)
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "upgrade"]) == 0
    out = capsys.readouterr().out
    assert f"(schema {store_target.db_schema}) is at revision 0004" in out


def test_show_json_has_the_documented_shape(one_subscription, capsys):
    assert main(["subscriptions", "show", str(one_subscription.subscription_id), "--json"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert set(SUBSCRIPTION_COLUMNS) <= set(view)
    assert view["product"] == "User Group"
    assert view["user_group"] == {"group_name": "CLI <Lab> 'ü'", "group_id": None}
    assert view["status"] == "initial" and view["insync"] is False and view["version"] == 1
    (process,) = view["processes"]
    assert process["workflow_target"] == "CREATE" and process["status"] == "running" and process["steps"] == []


def test_list_json_is_an_array_and_text_shows_the_name(one_subscription, capsys):
    assert main(["subscriptions", "list", "--json"]) == 0
    (view,) = json.loads(capsys.readouterr().out)
    assert view["subscription_id"] == str(one_subscription.subscription_id)
    assert main(["subscriptions", "list"]) == 0
    assert "CLI <Lab> 'ü'" in capsys.readouterr().out


def test_show_unknown_and_malformed_ids(store, capsys):
    assert main(["subscriptions", "show", str(uuid4())]) == 1
    assert "no subscription" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["subscriptions", "show", "not-a-uuid"])
    assert "is not an id (a UUID)" in capsys.readouterr().err


def test_the_console_command_keeps_stdout_parseable(one_subscription):
    """Airflow's log lines (e.g. which store is used) go to stderr; stdout is only the JSON."""
    result = subprocess.run([USERGROUP, "subscriptions", "list", "--json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["user_group"]["group_name"] == "CLI <Lab> 'ü'"


def test_a_broken_connection_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_DEFAULT", '{"conn_type": "mysql", "host": "h"}')
    result = subprocess.run([USERGROUP, "subscriptions", "list"], capture_output=True, text=True)
    assert result.returncode == 1
    assert "usergroup: StoreConnectionError: connection 'usergroup_default' has type 'mysql'" in result.stderr
    assert "Traceback" not in result.stderr


def test_processes_list_and_show(one_subscription, capsys):
    assert main(["processes", "list", "--json"]) == 0
    (process,) = json.loads(capsys.readouterr().out)
    assert process["status"] == "running" and process["workflow_target"] == "CREATE"
    assert main(["processes", "list", "--status", "failed", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["processes", "show", process["process_id"], "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["subscriptions"] == [str(one_subscription.subscription_id)] and "traceback" in shown
    assert main(["processes", "show", process["process_id"]]) == 0
    assert "create_user_group" in capsys.readouterr().out


def test_set_in_sync_refuses_while_a_process_runs(one_subscription, capsys):
    assert main(["subscriptions", "set-in-sync", str(one_subscription.subscription_id)]) == 1
    err = capsys.readouterr().err
    assert "stays out of sync" in err and "(create_user_group, running)" in err


def test_abort_then_set_in_sync(one_subscription, store, airflow_db, capsys):
    """A run stopped between two tasks leaves its process running: the operator aborts it, then resyncs."""
    assert main(["processes", "list", "--json"]) == 0
    (process,) = json.loads(capsys.readouterr().out)
    pid = process["process_id"]
    assert main(["processes", "abort", pid, "--reason", "run stopped in Airflow"]) == 0
    assert "Airflow has no run r of d" in capsys.readouterr().out  # its run is gone (airflow db clean)
    assert main(["subscriptions", "set-in-sync", str(one_subscription.subscription_id)]) == 1  # a create's
    assert "its create did not complete" in capsys.readouterr().err  # leftover: terminate cleans it up
    assert main(["processes", "list", "--status", "aborted", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["failed_reason"] == "run stopped in Airflow"
    assert main(["processes", "abort", pid, "--reason", "again"]) == 0  # safe to repeat: the new reason stands
    with store.transaction() as repo:
        assert repo.get_process(pid)["failed_reason"] == "again"
        repo.conn.execute(tables.processes.update().where(tables.processes.c.process_id == UUID(pid))
                          .values(status="completed"))
    assert main(["processes", "abort", pid]) == 1
    assert "is completed: only an unfinished process can be aborted" in capsys.readouterr().err


def test_abort_when_airflow_is_out_of_reach_still_aborts_and_says_so(one_subscription, store, monkeypatch, capsys):
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://nobody@127.0.0.1:1/none")
    with store.transaction() as repo:
        (process,) = repo.list_processes()
    code = subprocess.run([USERGROUP, "processes", "abort", str(process["process_id"])], capture_output=True,
                          text=True, timeout=120)
    assert code.returncode == 1 and f"process {process['process_id']} is aborted" in code.stdout
    assert "could not be marked failed" in code.stderr and "mark it failed in Airflow" in code.stderr
    with store.transaction() as repo:
        assert repo.get_process(process["process_id"])["status"] == "aborted"
