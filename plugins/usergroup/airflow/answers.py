"""Answer a task that waits in `awaiting_input` as Airflow's Required Actions page does (`PATCH .../hitlDetails`):
for our API, page and command; never inside a task."""

import time
from datetime import timedelta

from airflow._shared.timezones import timezone
from airflow.models.hitl import HITLDetail, HITLUser
from airflow.models.taskinstance import TaskInstance
from airflow.models.trigger import handle_event_submit
from airflow.triggers.base import TriggerEvent
from airflow.utils.session import create_session
from airflow.utils.state import TaskInstanceState
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from usergroup.airflow.runs import RunBusyError

SETTLE = timedelta(seconds=1)  # how long a task waits before it takes an answer (see _respond)


def respond(dag_id: str, run_id: str, task_id: str, map_index: int, chosen: list[str], params_input: dict,
            user_id: str, user_name: str) -> None:
    """Record the answer and resume the task, in one transaction: of two answers exactly one is taken, the other
    is a RunBusyError (as is an answer to a task that does not wait). A database busy with the other answer
    (SQLite) is tried again."""
    for attempt in range(5):
        try:
            return _respond(dag_id, run_id, task_id, map_index, chosen, params_input, HITLUser(id=user_id,
                                                                                                 name=user_name))
        except OperationalError:
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    return None


def _respond(dag_id: str, run_id: str, task_id: str, map_index: int, chosen: list[str], params_input: dict,
             user: HITLUser) -> None:
    with create_session() as session:
        # Locks in Airflow's order (the task instance, then its request), as its own answer and the task's park do.
        ti = session.scalar(select(TaskInstance).where(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == task_id,
            TaskInstance.map_index == map_index).with_for_update(of=TaskInstance))
        if ti is None:
            raise RunBusyError(f"Airflow has no task {task_id} in run {run_id} of {dag_id} (any more)")
        if ti.state != TaskInstanceState.AWAITING_INPUT:
            raise RunBusyError(f"its task {task_id} is {ti.state or 'not started'}, not waiting for an answer (a "
                               "task about to wait: try again in a moment)")
        if ti.updated_at is not None and timezone.utcnow() - ti.updated_at < SETTLE:
            # Airflow 3.3.2's scheduler takes a task resumed before it has handled the end of its parking for lost,
            # and retries it: that retry would ask again, and the answer would be lost.
            raise RunBusyError(f"its task {task_id} has only just begun to wait: try again in a moment")
        taken = session.execute(
            update(HITLDetail).where(HITLDetail.ti_id == ti.id, HITLDetail.responded_at.is_(None))
            .values(responded_by=user, responded_at=timezone.utcnow(), chosen_options=chosen,
                    params_input=params_input).execution_options(synchronize_session=False)).rowcount
        if not taken:
            raise RunBusyError(f"its task {task_id} has been answered already")
        detail = session.scalar(select(HITLDetail).where(HITLDetail.ti_id == ti.id)
                                .execution_options(populate_existing=True))
        handle_event_submit(TriggerEvent(detail.as_resume_event_payload()), task_instance=ti, session=session)
