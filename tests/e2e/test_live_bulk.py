"""create_user_groups on a live Airflow (PostgreSQL for the metadata and the store): 200 groups with five that
fail, fixed and resumed over orchestrator-core's API; two overlapping bulk runs at once; a task killed, and a run
stopped, with two chunks in flight."""

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import create, oss_for, run_on
from live import Client, oss_faults, running_task
from usergroup.workflows.user_group.create_user_group import create_user_group
from usergroup.workflows.user_group.terminate_user_group import terminate_user_group

pytestmark = [pytest.mark.live, pytest.mark.xdist_group("live")]  # live: not in test-fast; one worker

DAG_ID = "create_user_groups"


@pytest.fixture
def store(live_store):
    return live_store[1]


def bulk(live, names: list[str]) -> str:
    response = live.trigger({"group_names": names}, dag_id=DAG_ID)
    assert response.status_code == 200, response.text
    return response.json()["dag_run_id"]


def processes(store, run_id: str) -> dict[str, dict]:
    with store.transaction() as repo:
        return {p["input_state"]["group_name"]: p for p in repo.list_processes(dag_id=DAG_ID, run_id=run_id)}


def test_two_hundred_with_five_failures_then_fixed_and_resumed(live, store):
    taken = [create(store, name)["subscription_id"] for name in ("Live taken 1", "Live taken 2")]
    names = [f"Live bulk {i:03}" for i in range(195)]
    given = names + ["LIVE BULK 010", "live bulk 011", "Live bulk 0\uff11\uff12", "live TAKEN 1", "Live Taken 2"]
    run_id = bulk(live, given)
    assert live.wait_run(run_id, timeout=300, dag_id=DAG_ID) == "failed"
    states = live.task_states(run_id, DAG_ID)
    assert states["create_subscription"] == "failed" and states["done"] == "failed"
    assert {states[t] for t in create_user_group.task_ids[1:-1]} == {"success"}
    procs = processes(store, run_id)
    failed = {n: p for n, p in procs.items() if p["status"] == "failed"}
    assert len(procs) == 200 and set(failed) == set(given[-5:])
    assert "given twice in this run" in failed["live bulk 011"]["failed_reason"]
    assert "is already used by subscription" in failed["live TAKEN 1"]["failed_reason"]
    with store.transaction() as repo:
        steps_before = {p["process_id"]: len(repo.steps_of(p["process_id"])) for p in procs.values()}
    # The operator frees the two names (terminates their holders), aborts the three given twice, and resumes.
    for sid in taken:
        run_on(store, terminate_user_group, sid)
    admin = Client(live, "admin")
    for name in given[-5:-2]:
        assert admin("PUT", f"/processes/{failed[name]['process_id']}/abort").status_code == 204
    assert live.wait_run(run_id, timeout=10, dag_id=DAG_ID) == "failed"  # the others go on: the run is not stopped
    assert admin("PUT", f"/processes/{failed['live TAKEN 1']['process_id']}/resume", json=[{}]).status_code == 204
    assert live.wait_run(run_id, timeout=300, dag_id=DAG_ID) == "success"  # the clear reset the run
    procs = processes(store, run_id)
    assert sum(p["status"] == "completed" for p in procs.values()) == 197
    assert {procs[n]["status"] for n in given[-5:-2]} == {"aborted"}
    with store.transaction() as repo:  # the 195 did not run again
        assert all(len(repo.steps_of(p["process_id"])) == steps_before[p["process_id"]]
                   for n, p in procs.items() if n in names)
        active = [s.user_group.group_name for s in repo.list_subscriptions() if s.status == "active"]
    assert sorted(active) == sorted([*names, "live TAKEN 1", "Live Taken 2"])
    assert {g["calls"] for g in oss_for(store).groups()} == {1}


def test_two_overlapping_bulk_runs_at_once(live, store):
    first = [f"Overlap live {i}" for i in range(0, 120)]
    second = [f"OVERLAP LIVE {i}" for i in range(60, 180)]
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda names: bulk(live, names), [first, second]))
    assert "failed" in {live.wait_run(r, timeout=300, dag_id=DAG_ID) for r in runs}  # names one of them lost
    with store.transaction() as repo:
        active = [s.user_group.group_name for s in repo.list_subscriptions()
                  if s.status == "active" and s.user_group.group_name.lower().startswith("overlap live")]
    assert len(active) == 180 and len({n.lower() for n in active}) == 180
    lost = [p for r in runs for p in processes(store, r).values() if p["status"] == "failed"]
    assert len(lost) == 60 and all("claimed by process" in p["failed_reason"] or "already used by" in
                                   p["failed_reason"] for p in lost)


IN_FLIGHT = 2  # seconds into provision_user_group: its first two chunks (of four) provisioned, their answers slow


def provisioned_once(store, run_id: str, count: int) -> list[dict]:
    """Every item completed, its group provisioned once with the id its subscription holds; the OSS/BSS's records."""
    procs = processes(store, run_id)
    assert len(procs) == count and {p["status"] for p in procs.values()} == {"completed"}
    with store.transaction() as repo:
        subs = {s.user_group.group_name: s for s in repo.list_subscriptions() if s.status == "active"}
    groups = {g["subscription_id"]: g for g in oss_for(store).groups()}
    assert all(groups[subs[name].subscription_id]["group_id"] == subs[name].user_group.group_id for name in procs)
    return [groups[subs[name].subscription_id] for name in procs]


def provision_tries(store, run_id: str) -> dict[str, list[tuple[int, str]]]:
    with store.transaction() as repo:
        return {n: [(s["try_number"], s["status"]) for s in repo.steps_of(p["process_id"])
                    if s["task_id"] == "provision_user_group"] for n, p in processes(store, run_id).items()}


def test_a_task_killed_with_two_chunks_in_flight_is_retried_and_provisions_each_group_once(live, store):
    names = [f"Killed bulk {i:04}" for i in range(2000)]  # four chunks: two at once
    with oss_faults(store, delay=6):  # each chunk's batch call answers 6 s after it provisioned
        run_id = bulk(live, names)
        pid = running_task(live, run_id, "provision_user_group", DAG_ID)
        time.sleep(IN_FLIGHT)
        os.kill(pid, signal.SIGKILL)
    assert live.wait_run(run_id, timeout=300, dag_id=DAG_ID) == "success"
    groups = provisioned_once(store, run_id, len(names))
    assert {g["calls"] for g in groups} <= {1, 2} and sum(g["calls"] == 2 for g in groups) == 1000  # asked again
    tries = provision_tries(store, run_id)  # the killed try committed nothing: every item by a later try, once
    assert all(len(t) == 1 and t[0][0] >= 2 and t[0][1] == "success" for t in tries.values())


def test_a_run_stopped_with_two_chunks_in_flight_leaves_none_running_and_a_clear_completes_it(live, store):
    names = [f"Stopped bulk {i:04}" for i in range(2000)]
    with oss_faults(store, delay=6):
        run_id = bulk(live, names)
        running_task(live, run_id, "provision_user_group", DAG_ID)
        time.sleep(IN_FLIGHT)
        stopped = live.api("PATCH", f"/dags/{DAG_ID}/dagRuns/{run_id}", json={"state": "failed"})
        assert stopped.status_code == 200, stopped.text
        deadline = time.monotonic() + 60  # SIGTERM: the chunks in flight roll back, the run's processes fail
        while time.monotonic() < deadline and {p["status"] for p in processes(store, run_id).values()} != {"failed"}:
            time.sleep(0.5)
    procs = processes(store, run_id)
    assert len(procs) == 2000 and {p["status"] for p in procs.values()} == {"failed"}
    assert not any(provision_tries(store, run_id).values())  # nothing of the stopped task was committed
    resumed = Client(live, "admin")("PUT", f"/processes/{procs[names[0]]['process_id']}/resume", json=[{}])
    assert resumed.status_code == 204, resumed.text  # as docs/bulk.md says: the failed task and all after it
    assert live.wait_run(run_id, timeout=300, dag_id=DAG_ID) == "success"
    groups = provisioned_once(store, run_id, len(names))
    assert {g["calls"] for g in groups} <= {1, 2}
