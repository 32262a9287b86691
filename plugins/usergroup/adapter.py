"""The one adapter that turns a step into an Airflow task: merge the state, commit, record the step."""

import logging
import signal
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid5

from airflow.sdk import Variable, task
from airflow.sdk.exceptions import AirflowFailException
from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy.exc import InterfaceError, OperationalError

from usergroup.domain import USER_GROUP_PRODUCT, ProcessStatus, SubscriptionModel, Target
from usergroup.hook import UserGroupHook
from usergroup.provisioning import FakeOssBss, OssBssClient
from usergroup.step import State, Step
from usergroup.store.repository import Store, StoreError

log = logging.getLogger(__name__)

PROCESS_NAMESPACE = UUID("0d8f6f3e-6a52-4f61-8b43-54d5b6a0c1a9")
CUSTOMER_VARIABLE = "usergroup_customer_id"
DEFAULT_CUSTOMER_ID = "8f4b1a52-2c7e-4d1c-9a3e-0b6f5d2e7c10"  # no CRM: one faked customer, configurable
TRACEBACK_TAIL = 4000

# Errors that another try cannot cure: the task fails at once instead of being retried.
PERMANENT_ERRORS = (StoreError, ValueError, TypeError, KeyError)


def process_id_for(dag_id: str, run_id: str) -> UUID:
    """One process per DAG run, the same on every try."""
    return uuid5(PROCESS_NAMESPACE, f"{dag_id}/{run_id}")


def initial_state(form: type[BaseModel], target: Target, params: dict[str, Any], dag_run: Any,
                  customer_id: str) -> State:
    """orchestrator-core's `init`: the process, the workflow and the validated form fields."""
    fields = {name: params.get(name) for name in form.model_fields}
    try:
        validated = form.model_validate(fields)
    except ValidationError as exc:
        raise AirflowFailException(f"Invalid input: {_pydantic_message(exc)}") from None
    try:
        customer = UUID(customer_id)
    except ValueError:
        raise AirflowFailException(f"Airflow Variable {CUSTOMER_VARIABLE} is not a UUID: {customer_id!r}") from None
    return to_jsonable_python({
        "process_id": process_id_for(dag_run.dag_id, dag_run.run_id),
        "workflow_name": dag_run.dag_id,
        "workflow_target": str(target),
        "product_id": USER_GROUP_PRODUCT.product_id,
        "customer_id": customer,
        **validated.model_dump(),
    })


def run_step(step: Step, state: State, *, store: Store, oss: OssBssClient, try_number: int,
             start: dict[str, Any] | None = None, hostname: str | None = None) -> State:
    """Run one step: its updates merged into the state, a returned subscription saved, the step row and the
    process's progress written, all in one transaction; on failure nothing of the step is committed and the
    failure is recorded. A step that already committed in this process (its task died after the commit) is
    not run again: its recorded state is returned."""
    process_id = UUID(state["process_id"])
    if start is None and try_number > 1:  # a retry or a cleared task: the process is running again from now on
        with store.transaction() as repo:
            repo.resume_process(process_id, last_step=step.name)
    started_at = datetime.now(UTC)
    try:
        with store.transaction() as repo:
            if (done := repo.completed_step(process_id, step.name)) is not None:
                log.info("Step %s already committed by try %s of process %s: not run again, its state is returned",
                         step.name, done["try_number"], process_id)
                if done["try_number"] != try_number:
                    repo.record_step(process_id, step.name, status="replayed", try_number=try_number,
                                     state=done["state"], error=None, started_at=started_at, hostname=hostname,
                                     note=f"committed by try {done['try_number']}; not run again")
                return done["state"]
            if start is not None:  # the process opens with its first step: a refused input writes nothing
                repo.start_process(process_id, input_state=state, **start)
            else:
                repo.set_process_status(process_id, ProcessStatus.RUNNING, last_step=step.name)
            updates = step(state, repository=repo, oss=oss)
            if isinstance(sub := updates.get("subscription"), SubscriptionModel):
                updates["subscription"] = repo.save_subscription(sub)
            new_state = {**state, **to_jsonable_python(updates)}
            repo.record_step(process_id, step.name, status="success", try_number=try_number,
                             state=new_state, error=None, started_at=started_at, hostname=hostname)
        return new_state
    except RunStopped as exc:
        _record_failure(store, process_id, state, step.name, try_number, started_at, exc, start,
                        status=ProcessStatus.ABORTED, hostname=hostname)
        raise
    except Exception as exc:
        permanent = isinstance(exc, PERMANENT_ERRORS)
        if not (permanent and start is not None):
            _record_failure(store, process_id, state, step.name, try_number, started_at, exc, start,
                            hostname=hostname)
        if permanent:
            raise AirflowFailException(f"{step.name}: {exc}") from exc
        if isinstance(exc, OperationalError | InterfaceError):
            raise StoreUnavailableError(f"{step.name}: the usergroup store is unavailable, nothing of this step "
                                        f"was committed; Airflow retries it: {exc.orig}") from exc
        raise


class RunStopped(BaseException):  # noqa: N818 - named for what happened, like Airflow's AirflowTaskTerminated
    """Airflow stopped the task (SIGTERM: its run was marked failed or success, or the task was stopped)."""


@contextmanager
def stopped_by_sigterm() -> Iterator[None]:
    """While a step runs, SIGTERM unwinds it (its transaction rolls back) and the process is left `aborted`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        if callable(previous):
            previous(signum, frame)
        raise RunStopped("the task was stopped by Airflow (SIGTERM) before the step completed")

    signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class StoreUnavailableError(RuntimeError):
    """The store could not be reached or dropped the connection mid-step: transient, so retried."""


def _record_failure(store: Store, process_id: UUID, state: State, name: str, try_number: int,
                    started_at: datetime, exc: BaseException, start: dict[str, Any] | None,
                    status: ProcessStatus = ProcessStatus.FAILED, hostname: str | None = None) -> None:
    reason = f"{type(exc).__name__}: {exc}"
    tail = "".join(traceback.format_exception(exc))[-TRACEBACK_TAIL:]
    try:
        with store.transaction() as repo:
            if start is not None:
                repo.start_process(process_id, input_state=state, **start)
            if repo.record_step_failure(process_id, name, try_number=try_number, error=f"{reason}\n{tail}",
                                        started_at=started_at, hostname=hostname):
                repo.set_process_status(process_id, status, last_step=name, failed_reason=reason, traceback=tail)
    except Exception:  # the store itself may be what failed; the task fails with the original error
        log.exception("Could not record the failure of step %s in process %s", name, process_id)


def step_task(step: Step, *, form: type[BaseModel] | None = None, target: Target | None = None, **task_kwargs):
    """The TaskFlow task of `step`, its task id the step's name. The first task of a workflow gets the
    input `form` and the `target`: it builds the initial state and opens the process."""

    def body(state: State | None = None, *, params=None, dag_run=None, ti=None):
        start = None
        if state is None:
            customer_id = Variable.get(CUSTOMER_VARIABLE, default=DEFAULT_CUSTOMER_ID)
            state = initial_state(form, target, dict(params or {}), dag_run, customer_id)
            start = {
                "workflow_name": dag_run.dag_id, "workflow_target": str(target), "dag_id": dag_run.dag_id,
                "run_id": dag_run.run_id, "created_by": _triggered_by(dag_run),
            }
        hook = UserGroupHook()
        with stopped_by_sigterm():
            return run_step(step, state, store=hook.store, oss=FakeOssBss(*hook.url_and_schema),
                            try_number=ti.try_number, start=start, hostname=getattr(ti, "hostname", None))

    body.__name__ = body.__qualname__ = step.name
    body.__doc__ = step.description
    return task(task_id=step.name, **task_kwargs)(body)


def _triggered_by(dag_run: Any) -> str:
    run_type = getattr(dag_run, "run_type", None)
    user = getattr(dag_run, "triggering_user_name", None)
    return ":".join(str(p) for p in (getattr(run_type, "value", run_type), user) if p)


def _pydantic_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
