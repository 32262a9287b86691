"""The Airflow side of a process: stop its DAG run, clear its failed tasks, abort it (for the `usergroup` command
and the API; never inside a task)."""

from airflow.api.common.mark_tasks import set_dag_run_state_to_failed
from airflow.models.dagbag import DBDagBag
from airflow.models.dagrun import DagRun
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState
from sqlalchemy import select

from usergroup.store.repository import Store


def fail_dag_run(dag_id: str, run_id: str) -> str:
    """Mark the run failed if it is still queued or running, as the UI's "Mark as failed" does: a running task
    is stopped (SIGTERM), the tasks not yet run are skipped. Returns what was done, for the operator."""
    with create_session() as session:
        dag_run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if dag_run is None:
            return f"Airflow has no run {run_id} of {dag_id} (any more)"
        if dag_run.state not in (DagRunState.QUEUED, DagRunState.RUNNING):
            return f"its Airflow run {run_id} had already ended ({dag_run.state})"
        dag = DBDagBag().get_dag_for_run(dag_run, session=session)
        _, stopped = set_dag_run_state_to_failed(dag=dag, run_id=run_id, commit=True, session=session)
        tasks = ", ".join(sorted(ti.task_id for ti in stopped)) or "none was running"
        return f"its Airflow run {run_id} is marked failed (tasks stopped: {tasks})"


def run_state(dag_id: str, run_id: str) -> str | None:
    with create_session() as session:
        return session.scalar(select(DagRun.state).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))


RETRYING = ("up_for_retry", "scheduled", "queued", "running", "restarting", "deferred", "up_for_reschedule")


def retrying(dag_id: str, run_id: str, map_index: int = -1) -> bool:
    """Whether a task of the run (of the instance `map_index`) will run again: Airflow retries it."""
    from airflow.models.taskinstance import TaskInstance

    with create_session() as session:
        return session.scalar(select(TaskInstance.task_id).where(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.map_index == map_index,
            TaskInstance.state.in_(RETRYING)).limit(1)) is not None


class RunBusyError(RuntimeError):
    """The process's run is not in a state to be resumed."""


def clear_failed_tasks(dag_id: str, run_id: str, map_index: int = -1) -> list[str]:
    """Clear the run's failed tasks and those after them (the instance `map_index` only, for one process of a run
    of many), as the UI's "Clear" does: the run resumes from them."""
    with create_session() as session:
        dag_run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if dag_run is None:
            raise RunBusyError(f"Airflow has no run {run_id} of {dag_id} (any more)")
        if dag_run.state in (DagRunState.QUEUED, DagRunState.RUNNING) and map_index < 0:
            raise RunBusyError(f"its Airflow run {run_id} is still {dag_run.state} (a retry may be due)")
        failed = [ti for ti in dag_run.get_task_instances(session=session)
                  if ti.state in ("failed", "upstream_failed") and (map_index < 0 or ti.map_index == map_index)]
        if not failed:
            raise RunBusyError(f"its Airflow run {run_id} has no failed task to clear")
        dag = DBDagBag().get_dag_for_run(dag_run, session=session)
        # With their downstream tasks, as the UI's "Clear" with "Downstream" (those after a failed task of a bulk
        # run ran for the items that got through it: they run again for those that get through it now).
        ids, todo = set(), [ti.task_id for ti in failed if ti.map_index < 0]
        while todo:
            if (task_id := todo.pop()) not in ids:
                ids.add(task_id)
                todo += dag.task_dict[task_id].downstream_task_ids
        keys = [(ti.task_id, ti.map_index) for ti in failed if ti.map_index >= 0] + sorted(ids)
        dag.clear(task_ids=keys, run_id=run_id, session=session)
        return sorted(ti.task_id for ti in failed)


def abort(store: Store, process: dict, reason: str) -> tuple[str, str | None]:
    """Stop the process's Airflow run first (a running step is stopped and rolls back, releasing the process row
    its transaction holds), then abort the process in the store: from then on none of its steps runs. One of
    many processes of a run (a nightly validation, a bulk create) is aborted alone. Returns what was done and,
    if Airflow could not be reached, why (the abort still stops every later step)."""
    with store.transaction() as repo:
        many = process["map_index"] >= 0 or repo.count_processes(dag_id=process["dag_id"], run_id=process["run_id"]) > 1
        if many:
            repo.abort_process(process["process_id"], reason)
    if many:
        if process["map_index"] >= 0:
            return (f"its task instance {process['map_index']} of run {process['run_id']} stops before its next step; "
                    "the run's other processes go on"), None
        return f"it stops before its next step; the other processes of run {process['run_id']} go on", None
    try:
        stopped, airflow_error = fail_dag_run(process["dag_id"], process["run_id"]), None
    except Exception as exc:  # noqa: BLE001 - Airflow's database out of reach, or a concurrent abort got there first
        stopped, airflow_error = "", f"{type(exc).__name__}: {exc}"
        try:
            if run_state(process["dag_id"], process["run_id"]) not in (DagRunState.QUEUED, DagRunState.RUNNING):
                stopped, airflow_error = f"its Airflow run {process['run_id']} has ended", None
        except Exception:  # noqa: BLE001, S110 - still unreachable: the first error stands
            pass
    with store.transaction() as repo:
        repo.abort_process(process["process_id"], reason)
    return stopped, airflow_error
