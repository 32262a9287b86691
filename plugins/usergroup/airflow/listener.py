"""Airflow's listener: when a run of one of our workflows ends, however it ended, its process follows.

Airflow calls it where a run's state settles: in the scheduler (a run that finished or failed) and in the
api-server (a person marked the run failed or success). Both have the store connection; neither has the run's
params validated, and none is needed. An exception here is logged by Airflow and swallowed.
"""

import logging

from airflow.listeners import hookimpl
from airflow.utils.state import TaskInstanceState
from sqlalchemy import event
from sqlalchemy.orm import object_session

from usergroup.engine.settle import EndedRun, settle
from usergroup.engine.workflow import Bulk, Schedule, Workflow
from usergroup.settings import settings

log = logging.getLogger(__name__)


def ended_run(dag_run, declared: Workflow | Schedule | Bulk, state: str, msg: str = "") -> EndedRun:
    """What settle() needs of an Airflow DagRun (the ORM object), read in the caller's session."""
    from usergroup.airflow.schedule import SELECT_TASK  # not at import: it imports the task SDK

    first_task = (declared.task_ids[0] if isinstance(declared, Workflow) else
                  declared.workflow.task_ids[0] if isinstance(declared, Bulk) else SELECT_TASK)
    session = object_session(dag_run)  # none in `airflow dags test`: then Airflow's own session
    first = dag_run.get_task_instance(first_task, **({"session": session} if session else {}))
    exhausted = (first is not None and first.state == TaskInstanceState.FAILED
                 and first.try_number > first.max_tries)
    run_type = getattr(dag_run.run_type, "value", dag_run.run_type)
    return EndedRun(dag_id=dag_run.dag_id, run_id=dag_run.run_id, state=state, conf=dict(dag_run.conf or {}),
                    created_by=":".join(p for p in (run_type, dag_run.triggering_user_name) if p),
                    first_task_state=first.state if first else None, first_task_exhausted=exhausted, msg=msg or "")


def _ended(dag_run, state: str, msg: str) -> None:
    from usergroup.engine.discovery import declared  # not at import: Airflow loads the plugin in every process

    if (workflow := declared().get(dag_run.dag_id)) is None:
        return
    run = ended_run(dag_run, workflow, state, msg)
    session = object_session(dag_run)
    if session is None:
        _settle(workflow, run)
        return
    # Only once Airflow has committed the run's new state: a state change that rolls back (a deadlock in the
    # api-server, say) must not reach the trail.
    def committed(_session) -> None:
        _forget(session, "after_rollback", rolled_back)
        _settle(workflow, run)

    def rolled_back(_session) -> None:
        _forget(session, "after_commit", committed)

    event.listen(session, "after_commit", committed, once=True)
    event.listen(session, "after_rollback", rolled_back, once=True)


def _forget(session, name: str, fn) -> None:
    if event.contains(session, name, fn):
        event.remove(session, name, fn)


def _settle(workflow: Workflow | Schedule | Bulk, run: EndedRun) -> None:
    """Settle the process; whatever happens, never raise into Airflow's commit."""
    try:
        _settle_or_raise(workflow, run)
    except Exception:
        log.exception("usergroup: could not settle the process of run %s of %s", run.run_id, run.dag_id)


def _settle_or_raise(workflow: Workflow | Schedule | Bulk, run: EndedRun) -> None:
    from sqlalchemy.exc import OperationalError

    from usergroup.airflow.hook import UserGroupHook
    from usergroup.store.connect import create_store_engine
    from usergroup.store.repository import Store

    state = run.state
    # Never hold up the scheduler or the api-server: a step that still holds the process (a person marked the
    # run while it ran; Airflow is about to stop it) records its own end, so give up after the listener_lock_timeout.
    engine = create_store_engine(*UserGroupHook().url_and_schema, lock_timeout=settings().listener_lock_timeout)
    try:
        with Store(engine).transaction() as repo:
            if said := settle(repo, workflow, run):
                log.info("usergroup: run %s of %s ended %s: %s", run.run_id, run.dag_id, state, said)
    except OperationalError as exc:
        log.warning("usergroup: run %s of %s ended %s; its process is busy or the store is out of reach (%s): "
                    "`usergroup processes reconcile` settles it later", run.run_id, run.dag_id, state, exc.orig)
    finally:
        engine.dispose()


@hookimpl
def on_starting(component) -> None:
    """A scheduler, dag-processor or triggerer job starts (not a task: its DAG file imports what it needs)."""
    if type(component).__name__ == "Job":
        from usergroup.airflow.preload import preload

        preload()


@hookimpl
def on_dag_run_failed(dag_run, msg: str) -> None:
    _ended(dag_run, "failed", msg)


@hookimpl
def on_dag_run_success(dag_run, msg: str) -> None:
    _ended(dag_run, "success", msg)
