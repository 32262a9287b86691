"""A User Group's whole life on a live Airflow (scheduler, dag-processor, api-server on 127.0.0.1; store and
metadata on PostgreSQL): modify over REST, terminate with `airflow dags trigger`, validate; twenty renames at
once; the OSS/BSS down during a terminate; a User's whole life in a group, ten same-username creates at once;
the nightly validation, scheduled and triggered."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import USER_EXTERNAL, USER_INTERNAL, create, oss_for
from live import LiveAirflow, answer_waiting, oss_faults
from usergroup.store.repository import Store

pytestmark = [pytest.mark.live, pytest.mark.xdist_group("live")]  # live: not in test-fast; one worker


@pytest.fixture
def store(live_store):
    return live_store[1]


def trigger(live: LiveAirflow, dag_id: str, **conf) -> str:
    response = live.trigger(conf, dag_id=dag_id)
    assert response.status_code == 200, response.text
    return response.json()["dag_run_id"]


def process_of(store: Store, dag_id: str, run_id: str) -> dict:
    with store.transaction() as repo:
        (process,) = [p for p in repo.list_processes(dag_id=dag_id) if p["run_id"] == run_id]
        return process


def test_modify_over_rest_terminate_over_the_cli_and_validate(live, store):
    sid = create(store, "Live Lab")["subscription_id"]
    run_id = trigger(live, "modify_user_group", subscription_id=sid, group_name="Live Lab Renamed")
    assert live.wait_run(run_id, dag_id="modify_user_group") == "success"
    assert process_of(store, "modify_user_group", run_id)["status"] == "completed"

    run_id = trigger(live, "validate_user_group", subscription_id=sid)
    assert live.wait_run(run_id, dag_id="validate_user_group") == "success"
    with store.transaction() as repo:
        sub = repo.get_subscription(sid)
    assert (sub.user_group.group_name, sub.insync) == ("Live Lab Renamed", True)

    result = live.airflow("dags", "trigger", "terminate_user_group", "--conf",
                          json.dumps({"subscription_id": sid, "version": sub.version}), "--output", "json")
    (run,) = json.loads(result.stdout.strip().splitlines()[-1])  # after a log line
    assert live.wait_run(run["dag_run_id"], dag_id="terminate_user_group") == "success"
    with store.transaction() as repo:
        sub = repo.get_subscription(sid)
        targets = [(p["workflow_target"], p["status"]) for p in repo.processes_of(sid)]
    assert (sub.status, sub.insync) == ("terminated", True) and oss_for(store).read_user_group(sid) is None
    assert targets == [("CREATE", "completed"), ("MODIFY", "completed"), ("VALIDATE", "completed"),
                       ("TERMINATE", "completed")]

    # A terminated subscription: refused by the first task (writing nothing), the reason in the task's log.
    run_id = trigger(live, "modify_user_group", subscription_id=sid, group_name="Too Late")
    assert live.wait_run(run_id, dag_id="modify_user_group") == "failed"
    assert live.task_states(run_id, "modify_user_group")["store_process_subscription"] == "failed"
    with store.transaction() as repo:
        assert [p for p in repo.list_processes(dag_id="modify_user_group") if p["run_id"] == run_id] == []


def test_twenty_renames_at_once_over_rest(live, store):
    """Twenty clients saw version V and rename at once: one completes; each other one is refused at its first
    task (stale version, or out of sync: writing nothing) or at `unsync` (its process aborted), naming why."""
    created = create(store, "Contested Lab")
    sid, version = created["subscription_id"], created["subscription"]["version"]
    names = [f"Contested Lab {i}" for i in range(20)]
    with ThreadPoolExecutor(20) as pool:
        run_ids = list(pool.map(lambda n: trigger(live, "modify_user_group", subscription_id=sid, group_name=n,
                                                  version=version), names))
    states = {r: live.wait_run(r, timeout=300, dag_id="modify_user_group") for r in run_ids}
    (winner,) = [r for r, state in states.items() if state == "success"]
    assert list(states.values()).count("failed") == 19
    with store.transaction() as repo:
        sub = repo.get_subscription(sid)
        mine = [p for p in repo.list_processes(dag_id="modify_user_group") if p["run_id"] in run_ids]
    won = process_of(store, "modify_user_group", winner)
    assert sub.insync and sub.user_group.group_name == won["input_state"]["group_name"]
    assert oss_for(store).read_user_group(sid)["group_name"] == sub.user_group.group_name
    assert len([c for c in oss_for(store).changes(sid) if c["action"] == "rename"]) == 1
    # The losers were refused at the first task (writing nothing) or at unsync (aborted): none left to resume.
    assert sorted(p["status"] for p in mine if p["run_id"] != winner) == ["aborted"] * (len(mine) - 1)
    for p in mine:
        if p["run_id"] != winner:
            assert p["last_step"] == "unsync" and str(won["process_id"]) in p["failed_reason"]


def test_the_oss_down_during_a_terminate_then_cleared(live, store):
    sid = create(store, "Outage Lab")["subscription_id"]
    with oss_faults(store, fail=True):
        run_id = trigger(live, "terminate_user_group", subscription_id=sid)
        assert live.wait_run(run_id, timeout=240, dag_id="terminate_user_group") == "failed"
    assert live.task_states(run_id, "terminate_user_group")["deprovision_user_group"] == "failed"
    with store.transaction() as repo:
        sub = repo.get_subscription(sid)
    process = process_of(store, "terminate_user_group", run_id)
    assert (sub.status, sub.insync, process["status"]) == ("active", False, "failed")
    assert oss_for(store).read_user_group(sid) is not None
    assert live.clear_failed(run_id, ["deprovision_user_group"], "terminate_user_group").status_code == 200
    assert live.wait_run(run_id, timeout=180, dag_id="terminate_user_group") == "success"
    with store.transaction() as repo:
        sub = repo.get_subscription(sid)
    assert (sub.status, sub.insync) == ("terminated", True) and oss_for(store).read_user_group(sid) is None
    assert process_of(store, "terminate_user_group", run_id)["status"] == "completed"


def test_a_users_life_in_a_group_over_rest_and_the_cli(live, store):
    gid = create(store, "Live Users Lab")["subscription_id"]
    run_id = trigger(live, "create_user", product=USER_INTERNAL, user_group_id=gid, username="Live User", age=28)
    assert live.wait_run(run_id, dag_id="create_user") == "success"
    (user,) = repo_users(store, gid)
    uid = str(user.subscription_id)
    run_id = trigger(live, "modify_user_group", subscription_id=gid, group_name="Live Users Lab 2")
    assert live.wait_run(run_id, dag_id="modify_user_group") == "success"
    with store.transaction() as repo:
        user = repo.get_subscription(uid)
    assert (user.status, user.insync, user.user.group.group_name, user.user.age) == \
        ("active", True, "Live Users Lab 2", 28)

    # The group is in use: its terminate is refused by the first task, writing nothing.
    run_id = trigger(live, "terminate_user_group", subscription_id=gid)
    assert live.wait_run(run_id, dag_id="terminate_user_group") == "failed"
    with store.transaction() as repo:
        assert [p for p in repo.list_processes(dag_id="terminate_user_group") if p["run_id"] == run_id] == []

    result = live.airflow("dags", "trigger", "modify_user", "--conf",
                          json.dumps({"subscription_id": uid, "username": "Renamed User"}), "--output", "json")
    (run,) = json.loads(result.stdout.strip().splitlines()[-1])
    assert live.wait_run(run["dag_run_id"], dag_id="modify_user") == "success"
    run_id = trigger(live, "terminate_user", subscription_id=uid)
    assert live.wait_run(run_id, dag_id="terminate_user") == "success"
    run_id = trigger(live, "terminate_user_group", subscription_id=gid)
    assert live.wait_run(run_id, dag_id="terminate_user_group") == "success"
    with store.transaction() as repo:
        user, group = repo.get_subscription(uid), repo.get_subscription(gid)
    assert (user.status, user.user.username, group.status) == ("terminated", "Renamed User", "terminated")
    assert [c["action"] for c in oss_for(store).changes(uid)] == ["provision_user", "update_user", "remove_user"]


def test_ten_creates_of_one_username_at_once_over_rest(live, store):
    gid = create(store, "Live Crowded Lab")["subscription_id"]
    with ThreadPoolExecutor(10) as pool:
        run_ids = list(pool.map(lambda i: trigger(live, "create_user", product=USER_EXTERNAL, user_group_id=gid,
                                                  username="twin" if i % 2 else "TWIN"), range(10)))
    answer_waiting(live, store, runs=set(run_ids))  # the one that got the name waits for an operator's approval
    states = [live.wait_run(r, timeout=300, dag_id="create_user") for r in run_ids]
    assert states.count("success") == 1 and states.count("failed") == 9
    (user,) = repo_users(store, gid)
    assert user.status == "active" and user.affiliation == "external"
    assert len([u for u in oss_for(store).users() if u["group_id"] == user.user.group.group_id]) == 1


def repo_users(store: Store, group_id: str) -> list:
    with store.transaction() as repo:
        return [s for s in repo.list_subscriptions() if s.product.product_type == "User"
                and str(s.user.group.owner_subscription_id) == group_id]


def nightly_runs(live: LiveAirflow) -> list[dict]:
    return live.api("GET", "/dags/validate_user_groups/dagRuns", params={"limit": 100}).json()["dag_runs"]


def test_the_nightly_validation_scheduled_then_triggered(live, store):
    """Unpaused, the schedule runs at once for the last midnight (catchup off), then every night; triggered, it
    runs again. Other tests of this module are done: a validation takes subscriptions out of sync while it runs."""
    sids = [create(store, f"Night Lab {i}")["subscription_id"] for i in range(6)]
    oss_for(store).drift(sids[2], group_name="Changed At Night")
    with store.transaction() as repo:
        expected = {str(i) for i in repo.active_in_sync("UserGroup")}
    live.airflow("dags", "unpause", "validate_user_groups")
    deadline = time.monotonic() + 120
    while not (scheduled := [r for r in nightly_runs(live) if r["run_type"] == "scheduled"]):
        assert time.monotonic() < deadline, "no scheduled run"
        time.sleep(1)
    run_id = scheduled[0]["dag_run_id"]
    assert live.wait_run(run_id, timeout=300, dag_id="validate_user_groups") == "failed"  # one drifted
    with store.transaction() as repo:
        processes = repo.list_processes(dag_id="validate_user_groups")
        outcome = {str(repo.subscriptions_of(p["process_id"])[0]): p["status"] for p in processes
                   if p["run_id"] == run_id}
    assert set(outcome) == expected and outcome[sids[2]] == "failed"
    assert [s for s, status in outcome.items() if status != "completed"] == [sids[2]]

    run_id = trigger(live, "validate_user_groups")  # the drifted one is out of sync now: not selected
    assert live.wait_run(run_id, timeout=300, dag_id="validate_user_groups") == "success"
    with store.transaction() as repo:
        again = [p for p in repo.list_processes(dag_id="validate_user_groups") if p["run_id"] == run_id]
    assert len(again) == len(expected) - 1 and {p["status"] for p in again} == {"completed"}
    live.airflow("dags", "pause", "validate_user_groups")
