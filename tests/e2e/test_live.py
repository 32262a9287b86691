"""Against a live Airflow (scheduler, dag-processor, api-server on 127.0.0.1): failure and resume, a killed
task, races, and bad input on the REST and CLI trigger paths. Store and metadata on PostgreSQL."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import StoreTarget, oss_for
from live import LiveAirflow, OwnPostgres, oss_faults, running_task
from usergroup.store import tables
from usergroup.store.migrate import upgrade
from usergroup.store.repository import Store
from usergroup.workflows.user_group.create_user_group import create_user_group

pytestmark = [pytest.mark.live, pytest.mark.xdist_group("live")]  # live: not in test-fast; one worker

USERGROUP = str(Path(sys.executable).parent / "usergroup")
STEP_NAMES = create_user_group.task_ids


@pytest.fixture
def store(live_store):
    return live_store[1]


def restart_scheduler(live: LiveAirflow, **env: str) -> None:
    """Task processes inherit the scheduler's environment (LocalExecutor): restart it to change the fake
    or the store's connection; what is not given goes back to the stack's own settings."""
    live.stop("scheduler")
    for key in ("USERGROUP_FAKE_OSS_FAIL", "USERGROUP_FAKE_OSS_DELAY"):
        live.env.pop(key, None)
    live.env["AIRFLOW_CONN_USERGROUP_DEFAULT"] = live.store_conn
    live.env.update(env)
    live.start("scheduler")
    live.wait_healthy()


def usergroup_cli(live: LiveAirflow, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([USERGROUP, *args], env=live.env, capture_output=True, text=True, timeout=120)


def trigger(live: LiveAirflow, name: str) -> str:
    response = live.trigger({"group_name": name})
    assert response.status_code == 200, response.text
    return response.json()["dag_run_id"]


def subscription_of(store: Store, process_run_id: str):
    with store.transaction() as repo:
        (process,) = [p for p in repo.list_processes(dag_id="create_user_group") if p["run_id"] == process_run_id]
        subs = repo.subscriptions_of(process["process_id"])
        return process, (repo.get_subscription(subs[0]) if subs else None), repo.steps_of(process["process_id"])


def test_oss_failure_then_clear_resumes(live, store):
    """The OSS/BSS down (`usergroup ossbss faults --fail` on the running stack): the step's tries all fail and
    are recorded; up again (`--no-fail`), a clear of the failed task completes the run."""
    with oss_faults(store):  # off again however this ends
        switched = usergroup_cli(live, "ossbss", "faults", "--fail")
        assert switched.returncode == 0 and "fail:   on" in switched.stdout, switched.stderr
        run_id = trigger(live, "Failing Lab")
        assert live.wait_run(run_id, timeout=240) == "failed"
        switched = usergroup_cli(live, "ossbss", "faults", "--no-fail")
        assert switched.returncode == 0 and "fail:   off" in switched.stdout, switched.stderr
    assert live.task_states(run_id)["provision_user_group"] == "failed"
    process, sub, steps = subscription_of(store, run_id)
    assert sub.status == "provisioning" and sub.insync is False and sub.user_group.group_name == "Failing Lab"
    assert process["status"] == "failed" and process["last_step"] == "provision_user_group"
    assert "fake OSS/BSS unavailable" in process["failed_reason"] and "Traceback" in process["traceback"]
    tries = [(s["try_number"], s["status"]) for s in steps if s["name"] == "provision_user_group"]
    retries = int(live.api("GET", "/dags/create_user_group/tasks/provision_user_group").json()["retries"])
    assert retries >= 5 and tries == [(n, "failed") for n in range(1, retries + 2)]  # every try recorded

    refused = usergroup_cli(live, "subscriptions", "set-in-sync", str(sub.subscription_id))
    assert refused.returncode == 1 and f"process {process['process_id']} (create_user_group, failed)" in refused.stderr
    failed = json.loads(usergroup_cli(live, "processes", "list", "--status", "failed", "--json").stdout)
    assert str(process["process_id"]) in [p["process_id"] for p in failed]

    cleared = live.clear_failed(run_id, ["provision_user_group"])
    assert cleared.status_code == 200, cleared.text
    assert live.wait_run(run_id, timeout=180) == "success"
    process, sub, steps = subscription_of(store, run_id)
    assert sub.status == "active" and sub.insync is True and process["status"] == "completed"
    assert [s["name"] for s in steps if s["status"] == "success"] == STEP_NAMES
    groups = [g for g in oss_for(store).groups() if g["subscription_id"] == sub.subscription_id]
    assert len(groups) == 1 and groups[0]["group_id"] == sub.user_group.group_id


def test_a_clear_without_downstream_leaves_the_process_failed_not_running(live, store):
    """Clearing only the failed task re-runs it, leaves its downstream tasks upstream_failed and the run fails
    again: the process follows the run (the listener) instead of staying `running`; the README's clear with
    downstream tasks then completes it."""
    with oss_faults(store, fail=True):
        run_id = trigger(live, "Half Cleared Lab")
        assert live.wait_run(run_id, timeout=240) == "failed"
    only = live.api("POST", "/dags/create_user_group/clearTaskInstances", json={
        "dag_run_id": run_id, "task_ids": ["provision_user_group"], "dry_run": False, "only_failed": True,
        "reset_dag_runs": True, "include_downstream": False})
    assert only.status_code == 200, only.text
    wait_task(live, run_id, "provision_user_group", ("success",))
    assert live.wait_run(run_id, timeout=120) == "failed"
    process = wait_process(store, run_id, "failed")
    assert process["last_step"] == "provision_user_group"
    assert process["failed_reason"].startswith("the DAG run failed at provision_user_group")
    failed = json.loads(usergroup_cli(live, "processes", "list", "--status", "failed", "--json").stdout)
    assert str(process["process_id"]) in [p["process_id"] for p in failed]

    assert live.clear_failed(run_id, ["provision_user_group"]).status_code == 200  # with downstream: the recipe
    assert live.wait_run(run_id, timeout=180) == "success"
    process, sub, _ = subscription_of(store, run_id)
    assert process["status"] == "completed" and process["failed_reason"] is None
    assert sub.status == "active" and sub.insync


def wait_process(store: Store, run_id: str, status: str, timeout: float = 60) -> dict:
    deadline, process = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        with store.transaction() as repo:
            process = next((p for p in repo.list_processes() if p["run_id"] == run_id), None)
        if process is not None and process["status"] == status:
            return process
        time.sleep(0.5)
    raise AssertionError(f"the process of {run_id} is {process and process['status']}, not {status}")


def test_a_task_killed_mid_step_is_retried_and_the_run_completes(live, store):
    with oss_faults(store, delay=6):  # the OSS/BSS slow to answer the killed try, not its retry
        run_id = trigger(live, "Killed Lab")
        pid = running_task(live, run_id, "provision_user_group", "create_user_group", timeout=120)
        time.sleep(2)  # inside the step: the OSS/BSS has provisioned and is slow to answer
        os.kill(pid, signal.SIGKILL)
    assert live.wait_run(run_id, timeout=240) == "success"
    process, sub, steps = subscription_of(store, run_id)
    assert sub.status == "active" and sub.insync is True and process["status"] == "completed"
    tries = [(s["try_number"], s["status"]) for s in steps if s["name"] == "provision_user_group"]
    assert tries[-1][1] == "success" and tries[-1][0] >= 2  # the killed try committed nothing
    (group,) = [g for g in oss_for(store).groups() if g["subscription_id"] == sub.subscription_id]
    assert group["calls"] == 2 and group["group_id"] == sub.user_group.group_id  # asked twice, provisioned once


def wait_task(live: LiveAirflow, run_id: str, task_id: str, states: tuple[str, ...], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tis = live.api("GET", f"/dags/create_user_group/dagRuns/{run_id}/taskInstances").json()["task_instances"]
        ti = next(t for t in tis if t["task_id"] == task_id)
        if ti["state"] in states:
            return ti
        time.sleep(0.3)
    raise TimeoutError(f"{task_id} of {run_id} never reached {states}")


def test_the_store_going_away_mid_step_then_coming_back(live):
    """The store's own PostgreSQL is stopped while provision_user_group runs: that try fails with a clear
    error and commits nothing; the server comes back, the retry completes the run."""
    pg = OwnPostgres().init()
    try:
        target = StoreTarget("postgres", pg.url("postgres"), "usergroup")
        own = Store(target.engine())
        upgrade(own.engine)
        oss_for(own).upgrade()
        restart_scheduler(live, AIRFLOW_CONN_USERGROUP_DEFAULT=target.conn_json, USERGROUP_FAKE_OSS_DELAY="4")
        run_id = trigger(live, "Outage Lab")
        wait_task(live, run_id, "provision_user_group", ("running",))
        time.sleep(1.5)  # the step is inside its transaction, waiting for the OSS/BSS
        pg.stop("immediate")
        ti = wait_task(live, run_id, "provision_user_group", ("up_for_retry", "failed"), timeout=60)
        own.engine.dispose()
        pg.start()
        assert live.wait_run(run_id, timeout=180) == "success"
        log = live.api("GET", f"/dags/create_user_group/dagRuns/{run_id}/taskInstances/provision_user_group/logs/1",
                       headers={"Accept": "application/json"}).text
        assert '"exc_type":"StoreUnavailableError"' in log, log[-3000:]
        assert "provision_user_group: the usergroup store is unavailable, nothing of this step was committed" in log
        process, sub, steps = subscription_of(own, run_id)
        assert ti["try_number"] == 1 and sub.status == "active" and sub.insync and process["status"] == "completed"
        assert [(s["name"], s["status"]) for s in steps] == [(n, "success") for n in STEP_NAMES]  # nothing half
        with own.transaction() as repo:
            assert repo.count(tables.subscriptions) == 1 and repo.count(tables.processes_subscriptions) == 1
        (group,) = oss_for(own).groups()
        assert group["group_id"] == sub.user_group.group_id
        own.engine.dispose()
    finally:
        restart_scheduler(live)
        pg.remove()


def test_a_store_outage_longer_than_the_retries_is_reconciled_then_resumed(live):
    """The store is down for the whole run: no task can write, the run fails after its retries. Once the store
    is back, `usergroup processes reconcile` shows the run as a failed process; a clear then completes it."""
    pg = OwnPostgres().init()
    try:
        target = StoreTarget("postgres", pg.url("postgres"), "usergroup")
        own = Store(target.engine())
        upgrade(own.engine)
        oss_for(own).upgrade()
        own.engine.dispose()
        restart_scheduler(live, AIRFLOW_CONN_USERGROUP_DEFAULT=target.conn_json)
        pg.stop("immediate")
        run_id = trigger(live, "Dark Lab")
        assert live.wait_run(run_id, timeout=240) == "failed"
        log = live.home / "logs" / "stack" / "scheduler.log"
        tried = f"run {run_id} of create_user_group ended failed; its process is busy or the store is out of reach"
        deadline = time.monotonic() + 60  # the listener tried when the run ended, and could not write either
        while tried not in log.read_text(errors="replace") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert tried in log.read_text(errors="replace")
        pg.start()
        with own.transaction() as repo:
            assert repo.list_processes() == []  # nothing could be written
        reconciled = usergroup_cli(live, "processes", "reconcile")
        assert reconciled.returncode == 0, reconciled.stderr
        assert "recorded as failed: the DAG run failed before its first step reached the store" in reconciled.stdout
        failed = json.loads(usergroup_cli(live, "processes", "list", "--status", "failed", "--json").stdout)
        assert [p["run_id"] for p in failed] == [run_id]
        again = usergroup_cli(live, "processes", "reconcile").stdout
        assert again.splitlines()[-1].startswith("0 of ")  # safe to run twice

        assert live.clear_failed(run_id, ["create_subscription"]).status_code == 200
        assert live.wait_run(run_id, timeout=180) == "success"
        process, sub, _ = subscription_of(own, run_id)
        assert process["status"] == "completed" and sub.status == "active" and sub.insync
        own.engine.dispose()
    finally:
        restart_scheduler(live)
        pg.remove()


def test_fifty_creates_at_once_and_ten_with_one_name(live, store):
    with store.transaction() as repo:
        before = repo.count(tables.subscriptions)
    names = [f"Race {i:02d}" for i in range(50)]
    runs = [trigger(live, n) for n in names]
    same = [trigger(live, "Contested Name" if i % 2 else "contested NAME") for i in range(10)]
    states = {r: live.wait_run(r, timeout=900) for r in runs + same}
    assert [r for r in runs if states[r] != "success"] == []
    assert sorted(states[r] for r in same) == ["failed"] * 9 + ["success"]
    with store.transaction() as repo:
        subs = repo.list_subscriptions()
        assert repo.count(tables.subscriptions) == before + 51  # the nine losers wrote no subscription
        created = [s for s in subs if s.user_group.group_name in names]
        assert len(created) == 50 and len({s.subscription_id for s in created}) == 50
        assert all(s.status == "active" and s.insync for s in created)
        contested = [s for s in subs if (s.user_group.group_name or "").casefold() == "contested name"]
        assert len(contested) == 1 and contested[0].status == "active"
        losers = [r for r in same if states[r] == "failed"]
        assert not [p for p in repo.list_processes() if p["run_id"] in losers]  # and no process either


BAD_CONFS = [
    ({}, "group_name"), ({"group_name": None}, "group_name"), ({"group_name": 7}, "group_name"),
    ({"group_name": ["a"]}, "group_name"), ({"group_name": {"a": 1}}, "group_name"),
    ({"group_name": True}, "group_name"), ({"group_name": ""}, "group_name"), ({"group_name": "   "}, "group_name"),
    ({"group_name": " lead"}, "group_name"), ({"group_name": "trail "}, "group_name"),
    ({"group_name": "tab\there"}, "group_name"), ({"group_name": "new\nline"}, "group_name"),
    ({"group_name": "nul\x00"}, "group_name"), ({"group_name": "esc\x1b[0m"}, "group_name"),
    ({"group_name": "x" * 256}, "group_name"), ({"group_name": "\u200b"}, "group_name"),
    ({"group_name": "Lab\u202egpj.exe"}, "group_name"), ({"group_name": "\ufeffLab"}, "group_name"),
    ({"group_name": "a\u2028b"}, "group_name"),
]


def test_bad_input_over_rest_and_cli_creates_no_run_and_no_row(live, store):
    with store.transaction() as repo:
        rows = {t.name: repo.count(t) for t in tables.metadata.sorted_tables}
    runs = live.dag_run_count()
    for conf, field in BAD_CONFS:
        response = live.trigger(conf)
        assert response.status_code == 400, (conf, response.status_code, response.text)
        assert f"Invalid input for param {field}" in response.text, (conf, response.text)
    cli_cases = [
        ('{"group_name": ""}', "Invalid input for param group_name: ''"),  # which rule is named first varies
        ('{"group_name": 5}', "Invalid input for param group_name: 5 is not of type 'string'"),
        ('{"group_name": "x\\n"}', "Invalid input for param group_name: 'x\\n' does not match"),
        ('{"group_name": "a"', "JSONDecodeError: Expecting ',' delimiter"),  # malformed JSON
        ("not json", "JSONDecodeError: Expecting value"),
        ("[]", "DagRun conf must be a JSON object or null"),
    ]
    for conf, message in cli_cases:
        result = live.airflow("dags", "trigger", "create_user_group", "--conf", conf, check=False)
        assert result.returncode != 0, conf
        out = result.stdout + result.stderr
        assert message in out, (conf, [line for line in out.splitlines() if "Error" in line])
    assert live.dag_run_count() == runs
    with store.transaction() as repo:
        assert {t.name: repo.count(t) for t in tables.metadata.sorted_tables} == rows


def test_a_run_marked_failed_while_running_leaves_the_process_aborted(live, store):
    with oss_faults(store, delay=20):  # the OSS/BSS slow to answer; none after the block
        run_id = trigger(live, "Stopped Lab")
        wait_task(live, run_id, "provision_user_group", ("running",))
        marked = live.api("PATCH", f"/dags/create_user_group/dagRuns/{run_id}", json={"state": "failed"})
        assert marked.status_code == 200, marked.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            process, sub, _ = subscription_of(store, run_id)
            if process["status"] == "aborted":
                break
            time.sleep(1)
        assert process["status"] == "aborted", process
        assert "stopped by Airflow (SIGTERM) before the step completed" in process["failed_reason"]
        assert process["last_step"] == "provision_user_group"
        # the stopped step rolled back: the subscription is as initialize_subscription left it
        assert sub.status == "provisioning" and sub.user_group.group_id is None and sub.insync is False


def test_usergroup_abort_stops_the_run_and_no_step_runs_after_it(live, store):
    """`usergroup processes abort` while a step runs: the run is marked failed, the running step is stopped and
    rolls back, the process stays aborted with the operator's reason; a later clear runs nothing."""
    with oss_faults(store, delay=20):  # the OSS/BSS slow to answer; none after the block
        run_id = trigger(live, "Aborted Lab")
        wait_task(live, run_id, "provision_user_group", ("running",))
        time.sleep(1)  # inside the step
        process, _, _ = subscription_of(store, run_id)
        result = usergroup_cli(live, "processes", "abort", str(process["process_id"]), "--reason", "given up")
        assert result.returncode == 0, result.stderr
        assert f"its Airflow run {run_id} is marked failed (tasks stopped: provision_user_group)" in result.stdout
        assert live.run_state(run_id) == "failed"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the stopped try records itself (and keeps the process aborted)
            process, sub, steps = subscription_of(store, run_id)
            if any(s["task_id"] == "provision_user_group" for s in steps):
                break
            time.sleep(0.5)
        assert process["status"] == "aborted" and process["failed_reason"] == "given up"
        assert sub.status == "provisioning" and sub.user_group.group_id is None and sub.insync is False
        refused = usergroup_cli(live, "subscriptions", "set-in-sync", str(sub.subscription_id))
        assert refused.returncode == 1 and "its create did not complete" in refused.stderr  # terminate cleans up

        cleared = live.clear_failed(run_id, ["provision_user_group"])  # someone tries to resume it anyway
        assert cleared.status_code == 200, cleared.text
        live.wait_run(run_id, timeout=120)  # its skipped downstream tasks were not cleared: the run ends at once
        ti = wait_task(live, run_id, "provision_user_group", ("failed",))
        assert ti["try_number"] == 2  # failed at once, no retry
        log = live.api("GET", f"/dags/create_user_group/dagRuns/{run_id}/taskInstances/provision_user_group/logs/2",
                       headers={"Accept": "application/json"}).text
        assert f"process {process['process_id']} was aborted (given up)" in log, log[-2000:]
        after, sub_after, _ = subscription_of(store, run_id)
        assert after["status"] == "aborted" and sub_after == sub  # untouched


def test_giving_up_a_create_during_provisioning_then_terminate_cleans_up(live, store):
    """The README's way back: a create stopped during provision_user_group (the OSS/BSS kept the group it made)
    leaves the subscription provisioning, its name claimed; terminate_user_group removes the group, ends it
    terminated and frees the name."""
    with oss_faults(store, delay=20):  # the OSS/BSS slow to answer; none after the block
        run_id = trigger(live, "Given Up Lab")
        wait_task(live, run_id, "provision_user_group", ("running",))
        time.sleep(1.5)  # the OSS/BSS has made the group; the step waits for its answer
        process, _, _ = subscription_of(store, run_id)
        assert usergroup_cli(live, "processes", "abort", str(process["process_id"])).returncode == 0
    process = wait_process(store, run_id, "aborted")
    _, sub, _ = subscription_of(store, run_id)
    assert sub.status == "provisioning" and sub.insync is False
    assert [g for g in oss_for(store).groups() if g["subscription_id"] == sub.subscription_id]  # the orphan
    assert live.wait_run(trigger(live, "given up lab")) == "failed"  # the name is still claimed
    response = live.trigger({"subscription_id": str(sub.subscription_id)}, dag_id="terminate_user_group")
    assert response.status_code == 200, response.text
    assert live.wait_run(response.json()["dag_run_id"], dag_id="terminate_user_group") == "success"
    _, sub, _ = subscription_of(store, run_id)
    assert sub.status == "terminated" and sub.insync and sub.end_date is not None
    assert not [g for g in oss_for(store).groups() if g["subscription_id"] == sub.subscription_id]
    assert live.wait_run(trigger(live, "Given Up Lab")) == "success"  # the name is free again


def test_the_trail_survives_airflow_db_clean(live, store):
    run_id = trigger(live, "Clean Lab")
    assert live.wait_run(run_id) == "success"
    with store.transaction() as repo:
        before = {t.name: repo.count(t) for t in tables.metadata.sorted_tables}
    # Every table that holds the run; not `job`, `dag` or `dag_version`: those are the running stack's own rows (a
    # clean of them with a future timestamp stops the scheduler of any running Airflow, and unregisters its DAGs).
    live.airflow("db", "clean", "--clean-before-timestamp", "2999-01-01", "--yes", "--skip-archive", "--tables",
                 "dag_run,task_instance,task_instance_history,task_reschedule,xcom,log,callback,trigger")
    assert live.api("GET", f"/dags/create_user_group/dagRuns/{run_id}").status_code == 404  # Airflow forgot it
    with store.transaction() as repo:
        assert {t.name: repo.count(t) for t in tables.metadata.sorted_tables} == before
    process, sub, steps = subscription_of(store, run_id)
    assert process["status"] == "completed" and sub.status == "active" and len(steps) == 7
