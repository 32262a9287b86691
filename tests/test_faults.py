"""Faults: a task that dies after its step committed, for every step, then the retry; nothing duplicated."""

from contextlib import contextmanager
from uuid import uuid4

import pytest

from helpers import oss_for
from usergroup.airflow.tasks import run_step
from usergroup.domain import USER_GROUP_PRODUCT
from usergroup.store import tables
from usergroup.store.repository import Repository, Store
from usergroup.workflows.user_group.create_user_group import create_user_group

STEPS = create_user_group.steps
START = {"workflow_name": "create_user_group", "workflow_target": "CREATE", "dag_id": "create_user_group",
         "run_id": "manual__faults", "created_by": "test"}


class TaskDied(RuntimeError):
    """The task process died after the step's transaction committed (before Airflow recorded success)."""


class CrashAfterCommit(Store):
    """The store, except that the transaction recording `step`'s success commits and then the task dies."""

    def __init__(self, engine, step: str):
        super().__init__(engine)
        self.step, self.crashed = step, False

    @contextmanager
    def transaction(self):
        armed = []
        with self.engine.begin() as conn:
            repo = Repository(conn)
            record = repo.record_steps

            def record_steps(rows):
                if any(r["name"] == self.step and r["status"] == "success" for r in rows) and not self.crashed:
                    armed.append(True)
                record(rows)

            repo.record_steps = record_steps
            yield repo
        if armed:
            self.crashed = True
            raise TaskDied(f"task of {self.step} killed after its commit")


def run_workflow(store: Store, oss) -> dict:
    """Run the steps as Airflow would: a try that raises is retried with the same input state."""
    state = {"process_id": str(uuid4()), "workflow_name": "create_user_group", "workflow_target": "CREATE",
             "product_id": str(USER_GROUP_PRODUCT.product_id), "customer_id": str(uuid4()),
             "group_name": "Fault Lab"}
    for i, (step, task_id) in enumerate(zip(STEPS, create_user_group.task_ids, strict=True)):
        start = START if i == 0 else None
        try:
            new = run_step(step, state, store=store, oss=oss, try_number=1, task_id=task_id, start=start)
        except TaskDied:
            new = run_step(step, state, store=store, oss=oss, try_number=2, task_id=task_id, start=start)
        state = new
    return state


@pytest.mark.parametrize("crash_in", [s.name for s in STEPS])
def test_a_crash_after_each_steps_commit_then_the_retry(store, crash_in):
    crashing = CrashAfterCommit(store.engine, crash_in)
    oss = oss_for(store)
    state = run_workflow(crashing, oss)
    assert crashing.crashed
    with store.transaction() as repo:
        (sub,) = repo.list_subscriptions()
        assert sub.status == "active" and sub.insync and str(sub.subscription_id) == state["subscription_id"]
        assert repo.count(tables.processes_subscriptions) == 1
        assert repo.count(tables.processes) == 1
        assert repo.get_process(state["process_id"])["status"] == "completed"
        trail = [(s["name"], s["try_number"], s["status"]) for s in repo.steps_of(state["process_id"])]
        rows = {(s["name"], s["try_number"]): s for s in repo.steps_of(state["process_id"])}
    assert (crash_in, 1, "success") in trail and (crash_in, 2, "replayed") in trail
    assert len(trail) == len(STEPS) + 1  # one row per try: no second row for the same try
    assert "TaskDied: task of" in rows[(crash_in, 1)]["error"]  # the trail shows the failed try
    (group,) = oss.groups()
    assert group["calls"] == 1 and group["group_id"] == sub.user_group.group_id


def test_a_crash_inside_provisioning_after_the_oss_call(store, monkeypatch):
    """The OSS/BSS provisioned, then the step failed before its commit: the retry gets the same group."""
    oss = oss_for(store)
    real = oss.provision_user_group
    calls = []

    def provision_then_die(subscription_id, group_name):
        group_id = real(subscription_id, group_name)
        calls.append(group_id)
        if len(calls) == 1:
            raise TaskDied("killed between the OSS/BSS answer and the commit")
        return group_id

    monkeypatch.setattr(oss, "provision_user_group", provision_then_die)
    state = run_workflow(store, oss)
    (group,) = oss.groups()
    assert group["calls"] == 2 and calls[0] == calls[1] == state["group_id"]
    with store.transaction() as repo:
        steps = [(s["name"], s["try_number"], s["status"]) for s in repo.steps_of(state["process_id"])]
    assert ("provision_user_group", 1, "failed") in steps and ("provision_user_group", 2, "success") in steps
