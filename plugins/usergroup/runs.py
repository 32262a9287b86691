"""The Airflow side of a process: stop its DAG run (for the `usergroup` command; never inside a task)."""

from airflow.api.common.mark_tasks import set_dag_run_state_to_failed
from airflow.models.dagbag import DBDagBag
from airflow.models.dagrun import DagRun
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState
from sqlalchemy import select


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
