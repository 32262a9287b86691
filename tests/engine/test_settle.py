"""The trail follows Airflow's run: settle() brings a process in line with the run that ended."""

from uuid import UUID

import pytest

from helpers import oss_for
from usergroup.airflow.tasks import run_step
from usergroup.engine.process_id import process_id_for
from usergroup.engine.settle import EndedRun, settle
from usergroup.store import tables
from usergroup.workflows.user_group.create_user_group import create_user_group

START = {"workflow_name": "create_user_group", "workflow_target": "CREATE", "dag_id": "create_user_group",
         "created_by": "manual:tester"}


def ended(run_id: str, state: str, exhausted: bool = False, msg: str = "") -> EndedRun:
    return EndedRun(dag_id="create_user_group", run_id=run_id, state=state, conf={"group_name": "Recon Lab"},
                    created_by="manual:admin", first_task_state="failed" if exhausted else "success",
                    first_task_exhausted=exhausted, msg=msg)


def begin(store, run_id: str, steps: int) -> dict:
    """The first `steps` tasks of a create run, as Airflow ran them."""
    state = {"process_id": str(process_id_for("create_user_group", run_id)), "workflow_name": "create_user_group",
             "workflow_target": "CREATE", "product_id": "6b3c3a1e-5d0f-4e43-9a2f-2f1e0a8b7c01",
             "customer_id": "8f4b1a52-2c7e-4d1c-9a3e-0b6f5d2e7c10", "group_name": f"Recon {run_id}"}
    for i, (s, task_id) in enumerate(zip(create_user_group.steps[:steps], create_user_group.task_ids, strict=False)):
        state = run_step(s, state, store=store, oss=oss_for(store), try_number=1, task_id=task_id,
                         start={**START, "run_id": run_id} if i == 0 else None)
    return state


def settled(store, run: EndedRun) -> tuple[str | None, dict | None]:
    with store.transaction() as repo:
        said = settle(repo, create_user_group, run)
    with store.transaction() as repo:
        return said, repo.get_process(process_id_for(run.dag_id, run.run_id))


def test_a_failed_run_leaves_a_running_process_failed(store):
    """Only the failed task was cleared: it ran, its downstream tasks stayed upstream_failed, the run failed."""
    begin(store, "r1", 4)
    said, process = settled(store, ended("r1", "failed", msg="task failure"))
    assert process["status"] == "failed" and process["last_step"] == "provision_user_group"
    assert process["failed_reason"] == "the DAG run failed at provision_user_group: task failure" and "failed" in said
    assert settled(store, ended("r1", "failed"))[0] is None  # safe to run twice


def test_a_run_marked_success_before_the_process_completed_aborts_it(store):
    begin(store, "r2", 3)
    _, process = settled(store, ended("r2", "success"))
    assert process["status"] == "aborted" and "before the process completed" in process["failed_reason"]


@pytest.mark.parametrize("status", ["completed", "aborted", "failed"])
def test_a_settled_process_is_left_as_it_is(store, status):
    state = begin(store, f"r-{status}", 7 if status == "completed" else 2)
    with store.transaction() as repo:
        if status == "aborted":
            repo.abort_process(UUID(state["process_id"]), "operator")
        if status == "failed":
            repo.fail_process(UUID(state["process_id"]), "failed", last_step="x", failed_reason="own reason")
        before = repo.get_process(state["process_id"])
    for run_state in ("failed", "success"):
        said, after = settled(store, ended(f"r-{status}", run_state))
        assert said is None and after == before


def test_a_run_that_never_reached_the_store_gets_a_failed_process(store):
    """The first task failed after all its tries (the store was down): once the store is back, the operator
    sees a failed process, which a clear of the first task resumes."""
    said, process = settled(store, ended("r3", "failed", exhausted=True, msg="task failure"))
    assert process["status"] == "failed" and process["input_state"] == {"group_name": "Recon Lab"}
    assert process["last_step"] == "create_subscription" and "before its first step reached the store" in said
    state = begin(store, "r3", 7)  # the clear: the first task opens the same process and the run completes
    with store.transaction() as repo:
        assert repo.get_process(state["process_id"])["status"] == "completed"


def test_a_refused_input_still_leaves_no_process(store):
    """A refusal fails the first task at once (tries left): nothing is written, as on every path."""
    said, process = settled(store, ended("r4", "failed", exhausted=False))
    assert said is None and process is None


def test_a_scheduled_run_that_ended_settles_each_of_its_unfinished_processes(store):
    """A nightly run killed mid-way: its processes that had not completed follow the run; the others stay."""
    from usergroup.workflows.user_group.validate_user_groups import validate_user_groups

    with store.transaction() as repo:
        for i, status in enumerate(["completed", "running", "created", "failed"]):
            pid = process_id_for("validate_user_groups", "scheduled__n", f"subscription-{i}")
            repo.start_process(pid, workflow_name="validate_user_group", workflow_target="VALIDATE",
                               dag_id="validate_user_groups", run_id="scheduled__n", created_by="scheduled",
                               input_state={}, map_index=i)
            repo.conn.execute(tables.processes.update().where(tables.processes.c.process_id == pid)
                              .values(status=status, last_step="unsync"))
    run = EndedRun(dag_id="validate_user_groups", run_id="scheduled__n", state="failed", conf={},
                   created_by="scheduled", first_task_state="success", first_task_exhausted=False, msg="killed")
    with store.transaction() as repo:
        said = settle(repo, validate_user_groups, run)
    with store.transaction() as repo:
        statuses = [p["status"] for p in repo.list_processes(run_id="scheduled__n")]
    assert sorted(statuses) == ["completed", "failed", "failed", "failed"] and said.count("is failed") == 2
    with store.transaction() as repo:
        assert settle(repo, validate_user_groups, run) is None  # safe to run again
