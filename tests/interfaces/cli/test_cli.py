"""The `usergroup` command: db upgrade, subscriptions list/show, in JSON and as text."""

import json
import subprocess
import sys
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from helpers import FAKE_OSSBSS_CONN, create, create_user
from usergroup.domain import USER_GROUP_PRODUCT, UserGroupInactive
from usergroup.interfaces.cli.main import main
from usergroup.interfaces.views import SUBSCRIPTION_COLUMNS
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
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_OSSBSS", FAKE_OSSBSS_CONN)
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "upgrade"]) == 0
    out = capsys.readouterr().out
    assert f"(schema {store_target.db_schema}) is at revision 0010" in out


def test_show_json_has_the_documented_shape(one_subscription, capsys):
    assert main(["subscriptions", "show", str(one_subscription.subscription_id), "--json"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert set(SUBSCRIPTION_COLUMNS) <= set(view)
    assert view["product"] == "User Group"
    assert view["user_group"] == {"owner_subscription_id": str(one_subscription.subscription_id),
                                  "group_name": "CLI <Lab> 'ü'", "group_id": None}
    assert view["status"] == "initial" and view["insync"] is False and view["version"] == 1
    (process,) = view["processes"]
    assert process["workflow_target"] == "CREATE" and process["status"] == "running" and process["steps"] == []


def test_list_json_is_an_array_and_text_shows_the_name(one_subscription, capsys):
    assert main(["subscriptions", "list", "--json"]) == 0
    (view,) = json.loads(capsys.readouterr().out)
    assert view["subscription_id"] == str(one_subscription.subscription_id)
    assert main(["subscriptions", "list"]) == 0
    assert "CLI <Lab> 'ü'" in capsys.readouterr().out


def test_a_user_and_its_group_as_text_and_json(store, capsys):
    gid = create(store, "CLI Group")["subscription_id"]
    uid = create_user(store, gid, "cli user", age=7)["subscription_id"]
    assert main(["subscriptions", "show", uid]) == 0
    out = capsys.readouterr().out
    assert "affiliation      internal" in out and "user.group.group_name CLI Group" in out
    assert f"user.group.owner_subscription_id {gid}" in out and "user.username    cli user" in out
    assert main(["subscriptions", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith(uid) and "User internal" in line and line.endswith("cli user") for line in lines)
    assert main(["subscriptions", "show", uid, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["user"]["group"]["group_name"] == "CLI Group"
    assert main(["subscriptions", "workflows", gid, "--json"]) == 0
    (terminate,) = json.loads(capsys.readouterr().out)["terminate"]
    assert terminate["reason"] == "subscription.no_modify_subscription_in_use_by_others" and uid in terminate["message"]
    assert main(["subscriptions", "workflows", uid]) == 0
    assert capsys.readouterr().out.split() == ["modify", "modify_user", "allowed", "terminate", "terminate_user",
                                               "allowed", "validate", "validate_user", "allowed"]


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
    assert main(["processes", "abort", pid, "--reason", "again"]) == 1  # refused, as the API and the page refuse
    assert "is aborted: only an unfinished process can be aborted" in capsys.readouterr().err
    with store.transaction() as repo:
        assert repo.get_process(pid)["failed_reason"] == "run stopped in Airflow"  # the first reason stands
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


def test_subscription_workflows_says_what_may_run_and_why_not(store, capsys):
    from helpers import create, run_on
    from usergroup.workflows.user_group.modify_user_group import modify_user_group

    sid = create(store, "Rules Lab")["subscription_id"]
    assert main(["subscriptions", "workflows", sid, "--json"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert [w["name"] for w in view["modify"]] == ["modify_user_group"] and "reason" not in view
    assert all("reason" not in w for t in ("modify", "terminate", "validate") for w in view[t])
    held = run_on(store, modify_user_group, sid, upto=2, group_name="Other")  # past unsync: it holds it
    assert main(["subscriptions", "workflows", sid]) == 0
    out = capsys.readouterr().out
    assert f"terminate  terminate_user_group    refused: subscription {sid} is out of sync; held by process " \
           f"{held['process_id']} (modify_user_group, running) (subscription.not_in_sync)" in out
    assert main(["subscriptions", "workflows", str(uuid4())]) == 1


def test_ossbss_list_and_drift(store, capsys):
    from helpers import create

    sid = create(store, "Drifting Lab")["subscription_id"]
    assert main(["ossbss", "drift", sid, "--rename", "Elsewhere"]) == 0
    assert "renamed to 'Elsewhere'" in capsys.readouterr().out
    assert main(["ossbss", "list", "--json"]) == 0
    (group,) = json.loads(capsys.readouterr().out)
    assert group["subscription_id"] == sid and group["group_name"] == "Elsewhere"
    assert main(["ossbss", "drift", sid, "--remove"]) == 0
    assert main(["ossbss", "drift", sid, "--remove"]) == 1
    assert "holds no group for subscription" in capsys.readouterr().err


def test_ossbss_faults_shows_and_sets_the_fakes_switches(store, capsys):
    from helpers import oss_for

    assert main(["ossbss", "faults"]) == 0
    assert capsys.readouterr().out == "fail:   off\ndelay:  0 s\nrefuse: none\n"
    assert main(["ossbss", "faults", "--fail", "--delay", "1.5", "--refuse", "^No "]) == 0
    assert capsys.readouterr().out == "fail:   on\ndelay:  1.5 s\nrefuse: '^No ' (its refuse switch)\n"
    assert oss_for(store).faults().fail is True
    assert main(["ossbss", "faults", "--refuse", "("]) == 1  # refused, nothing written
    assert "refuse: '(' is not a regular expression" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["ossbss", "faults", "--delay", "-1"])
    assert "'-1' is not a number of seconds from 0 to 30" in capsys.readouterr().err
    assert main(["ossbss", "faults", "--no-fail", "--no-refuse", "--delay", "0"]) == 0
    assert capsys.readouterr().out == "fail:   off\ndelay:  0 s\nrefuse: none\n"


def test_ossbss_faults_names_the_environments_fail_switch(store, knobs, capsys):
    knobs(USERGROUP_FAKE_OSS_FAIL="1")
    assert main(["ossbss", "faults", "--no-fail"]) == 0  # the table's off; this environment's still on
    assert capsys.readouterr().out.startswith("fail:   on (USERGROUP_FAKE_OSS_FAIL in this environment)\n")


def test_workflows_lists_every_dag_id(capsys):
    assert main(["workflows"]) == 0
    assert capsys.readouterr().out.split() == ["create_user", "create_user_group", "create_user_groups",
                                               "modify_user", "modify_user_group", "terminate_user",
                                               "terminate_user_group", "validate_user", "validate_user_group",
                                               "validate_user_groups", "validate_users"]
    assert main(["workflows", "--chain"]) == 0
    out = capsys.readouterr().out
    assert "modify_user_group\tMODIFY\tstore_process_subscription >> unsync >> modify_user_group_subscription" in out
    assert "validate_user_groups\t@daily\tvalidate_user_group for each active User Group in sync" in out
    assert "validate_users\t@daily\tvalidate_user for each active User internal or User external in sync" in out
    assert "validate_user\tVALIDATE\tstore_process_subscription >> unsync >> check_user_in_ossbss >> resync" in out
    assert "create_user_groups\tbulk\tcreate_user_group for each of many, each task for all: create_subs" in out


def test_aborting_one_process_of_a_nightly_run_leaves_the_run_alone(store, monkeypatch, capsys):
    """A nightly run holds a process per subscription: aborting one must not mark the whole run failed."""
    from usergroup.airflow import runs

    monkeypatch.setattr(runs, "fail_dag_run", lambda *a: pytest.fail("the whole run would be stopped"))
    pid = uuid4()
    with store.transaction() as repo:
        repo.start_process(pid, workflow_name="validate_user_group", workflow_target="VALIDATE",
                           dag_id="validate_user_groups", run_id="scheduled__x", created_by="scheduled",
                           input_state={}, map_index=3)
    assert main(["processes", "abort", str(pid)]) == 0
    assert "task instance 3 of run scheduled__x stops before its next step" in capsys.readouterr().out
    with store.transaction() as repo:
        assert repo.get_process(pid)["status"] == "aborted"


def test_aborting_one_process_of_a_bulk_run_leaves_the_run_alone(store, monkeypatch, capsys):
    from usergroup.airflow import runs

    monkeypatch.setattr(runs, "fail_dag_run", lambda *a: pytest.fail("the whole run would be stopped"))
    pids = [uuid4(), uuid4()]
    with store.transaction() as repo:
        for pid in pids:
            repo.start_process(pid, workflow_name="create_user_group", workflow_target="CREATE",
                               dag_id="create_user_groups", run_id="manual__x", created_by="manual",
                               input_state={})
    assert main(["processes", "abort", str(pids[0])]) == 0
    assert "it stops before its next step; the other processes of run manual__x go on" in capsys.readouterr().out
    with store.transaction() as repo:
        assert [repo.get_process(pid)["status"] for pid in pids] == ["aborted", "created"]
