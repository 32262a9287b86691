"""The one adapter that turns a step into an Airflow task: merge the state, commit, record the step."""

import logging
import signal
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from airflow.sdk import Variable, task
from airflow.sdk.exceptions import AirflowFailException
from pydantic import ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy.exc import InterfaceError, OperationalError

from usergroup.domain import ProcessStatus, SubscriptionModel
from usergroup.domain.errors import LifecycleError
from usergroup.domain.subscription import products_of_type
from usergroup.hook import UserGroupHook
from usergroup.ossbss.client import OssBssClient
from usergroup.ossbss.errors import PermanentError
from usergroup.ossbss_hook import OssBssHook
from usergroup.step import State, Step, StepError
from usergroup.store.repository import ProcessAbortedError, RefusedError, Store, StoreError

if TYPE_CHECKING:
    from usergroup.workflow import Workflow

log = logging.getLogger(__name__)

PROCESS_NAMESPACE = UUID("0d8f6f3e-6a52-4f61-8b43-54d5b6a0c1a9")
CUSTOMER_VARIABLE = "usergroup_customer_id"
DEFAULT_CUSTOMER_ID = "8f4b1a52-2c7e-4d1c-9a3e-0b6f5d2e7c10"  # no CRM: one faked customer, configurable
TRACEBACK_TAIL = 4000

# Errors that another try cannot cure, by our own classes: the task fails at once instead of being retried. Any other
# error (the OSS/BSS's TransientError, a builtin one) is retried.
PERMANENT_ERRORS = (StoreError, PermanentError, LifecycleError, StepError, ValidationError)


def process_id_for(dag_id: str, run_id: str, item: UUID | str | None = None) -> UUID:
    """One process per DAG run (per item, a subscription or a bulk run's input, in a run that runs a workflow for
    many), the same on every try (and, for a subscription, whichever mapped task instance runs it)."""
    return uuid5(PROCESS_NAMESPACE, f"{dag_id}/{run_id}" + (f"/{item}" if item else ""))


def initial_state(workflow: "Workflow", params: dict[str, Any], dag_run: Any, customer_id: str,
                  per_subscription: bool = False) -> State:
    """orchestrator-core's `init`: the process, the workflow and the validated form fields."""
    fields = {name: params.get(name) for name in workflow.form.model_fields}
    try:
        validated = workflow.form.model_validate(fields)
    except ValidationError as exc:
        raise AirflowFailException(f"Invalid input: {_pydantic_message(exc)}") from None
    try:
        customer = UUID(customer_id)
    except ValueError:
        raise AirflowFailException(f"Airflow Variable {CUSTOMER_VARIABLE} is not a UUID: {customer_id!r}") from None
    products = products_of_type(workflow.product_type)  # a create's form may choose one of several
    product_id = getattr(validated, "product", None) or (products[0].product_id if len(products) == 1 else None)
    return to_jsonable_python({
        "process_id": process_id_for(dag_run.dag_id, dag_run.run_id,
                                     validated.subscription_id if per_subscription else None),
        "workflow_name": workflow.name,
        "workflow_target": str(workflow.target),
        "product_type": workflow.product_type,
        "product_id": product_id,
        "customer_id": customer,
        **validated.model_dump(),
    })


def run_step(step: Step, state: State, *, store: Store, oss: OssBssClient, try_number: int,
             task_id: str | None = None, map_index: int = -1, start: dict[str, Any] | None = None,
             hostname: str | None = None, checks: tuple[Step, ...] = ()) -> State:
    """Run one try of the task `task_id` (default: the step's name) over `state`.

    The process row is locked first, so of two live tries of one task exactly one runs the step. The step's
    updates are merged into the state, a returned subscription saved, the step row and the process's progress
    written, all in one transaction; on failure nothing of the step is committed and the failure is recorded.
    A task that already committed in this process (it died after its commit) is not run again: its recorded
    state is returned. A step of an aborted process refuses to run. The first task (`start`) of a new process
    runs the workflow's input `checks` first, in the same transaction: a refusal writes nothing."""
    process_id = UUID(state["process_id"])
    task_id = task_id or step.name
    started_at = datetime.now(UTC)
    row = {"task_id": task_id, "map_index": map_index, "try_number": try_number, "hostname": hostname}
    opening = {**start, "input_state": state} if start is not None else None
    try:
        with store.transaction() as repo:
            # The process opens with its first step, after the input's checks (until that step has committed):
            # a refused input writes nothing.
            if start is not None:
                if checks and repo.completed_step(process_id, task_id, map_index) is None:
                    for check in checks:
                        state = {**state, **to_jsonable_python(check(state, repository=repo, oss=oss))}
                repo.start_process(process_id, input_state=state, **start)
            repo.enter_step(process_id, task_id)  # locks the process; refuses an aborted one
            if (done := repo.completed_step(process_id, task_id, map_index)) is not None:
                log.info("Task %s already committed by try %s of process %s: not run again, its state is returned",
                         task_id, done["try_number"], process_id)
                if done["try_number"] != try_number:
                    repo.record_step(process_id, step.name, status="replayed", state=done["state"], error=None,
                                     started_at=started_at, note=f"committed by try {done['try_number']}; not run "
                                     "again", **row)
                return done["state"]
            updates = step(state, repository=repo, oss=oss)
            if isinstance(sub := updates.get("subscription"), SubscriptionModel):
                updates["subscription"] = repo.save_subscription(sub)
                # From its first commit on, the subscription is this process's (the in-sync guard sees it): a
                # subscription the state already holds was linked with the commit of the step that put it there.
                if not _holds(state, sub):
                    repo.link_subscription(process_id, sub.subscription_id, state["workflow_target"])
            new_state = {**state, **to_jsonable_python(updates)}
            repo.record_step(process_id, step.name, status="success", state=new_state, error=None,
                             started_at=started_at, **row)
        return new_state
    except ProcessAbortedError as exc:  # the process keeps its abort; the task fails at once
        raise AirflowFailException(f"{task_id}: {exc}") from None
    except StoreError as exc:  # refused: another workflow holds the subscription, a duplicate name, ...
        # A refused workflow will not go on: its process is aborted. A refused input writes nothing, but ends
        # (aborts) a process an earlier try of the first task opened.
        refused = start is not None or isinstance(exc, RefusedError)
        record_failure(store, process_id, step.name, row, started_at, exc,
                       ProcessStatus.ABORTED if refused else ProcessStatus.FAILED, existing_only=start is not None)
        raise AirflowFailException(f"{task_id}: {exc}") from exc
    except RunStopped as exc:
        record_failure(store, process_id, step.name, row, started_at, exc, ProcessStatus.ABORTED, opening)
        raise
    except Exception as exc:
        permanent = isinstance(exc, PERMANENT_ERRORS)
        record_failure(store, process_id, step.name, row, started_at, exc, opening=opening,
                       existing_only=permanent and start is not None)
        if permanent:
            raise AirflowFailException(f"{task_id}: {exc}") from exc
        if isinstance(exc, OperationalError | InterfaceError):
            raise StoreUnavailableError(f"{task_id}: the usergroup store is unavailable, nothing of this step "
                                        f"was committed; Airflow retries it: {exc.orig}") from exc
        raise


def _holds(state: State, sub: SubscriptionModel) -> bool:
    """Whether an earlier step of this process returned `sub` (run_step saved and linked it then)."""
    held = state.get("subscription")
    return isinstance(held, dict) and held.get("subscription_id") == str(sub.subscription_id)


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


def record_failure(store: Store, process_id: UUID, name: str, row: dict[str, Any], started_at: datetime,
                   exc: BaseException, status: ProcessStatus = ProcessStatus.FAILED,
                   opening: dict[str, Any] | None = None, existing_only: bool = False) -> None:
    """Record a failed try and the process's reason; `opening` creates the process row if there is none yet,
    `existing_only` records nothing if there is none."""
    reason = f"{type(exc).__name__}: {exc}"
    tail = "".join(traceback.format_exception(exc))[-TRACEBACK_TAIL:]
    try:
        with store.transaction() as repo:
            if repo.get_process(process_id) is None:
                if existing_only:
                    return
                if opening is not None:
                    repo.start_process(process_id, **opening)
            if repo.record_step_failure(process_id, name, error=f"{reason}\n{tail}", started_at=started_at, **row):
                repo.fail_process(process_id, status, last_step=row["task_id"], failed_reason=reason, traceback=tail)
    except Exception:  # the store itself may be what failed; the task fails with the original error
        log.exception("Could not record the failure of task %s in process %s", row["task_id"], process_id)


def step_task(step: Step, workflow: "Workflow", *, task_id: str | None = None, first: bool = False):
    """The TaskFlow task of `step` in `workflow`, its task id the step's name (or `task_id`), its display name
    the step's description. The `first` task (decided when the DAG is built) validates the input form, builds
    the initial state and opens the process; every other task takes the state its upstream task returned."""
    task_id = task_id or step.name

    def body(state: State | None = None, *, params=None, dag_run=None, ti=None):
        opening = opening_of(workflow, dag_run)
        if first:
            if unknown := sorted(set(getattr(dag_run, "conf", None) or {}) - set(workflow.params)):
                raise AirflowFailException(f"Invalid input: {', '.join(map(repr, unknown))} not a parameter of "
                                           f"{workflow.name} (its parameters: {', '.join(workflow.params)})")
            customer_id = Variable.get(CUSTOMER_VARIABLE, default=DEFAULT_CUSTOMER_ID)
            state = initial_state(workflow, dict(params or {}), dag_run, customer_id)
        store, oss = services(task_id)
        row = {"task_id": task_id, "map_index": getattr(ti, "map_index", -1), "try_number": ti.try_number,
               "hostname": getattr(ti, "hostname", None)}
        if state is None:  # its upstream task returned nothing: it was marked success by hand, or never ran
            exc = MissingStateError(f"{task_id}: no state from the upstream task (was it marked success by hand?); "
                                    "clear the run's first failed or skipped task with its downstream tasks")
            process_id = process_id_for(dag_run.dag_id, dag_run.run_id)
            record_failure(store, process_id, step.name, row, datetime.now(UTC), exc,
                           opening={**opening, "input_state": dict(params or {})})
            raise AirflowFailException(str(exc))
        with stopped_by_sigterm():
            return run_step(step, state, store=store, oss=oss, task_id=task_id, map_index=row["map_index"],
                            try_number=row["try_number"], start=opening if first else None, hostname=row["hostname"],
                            checks=workflow.checks if first else ())

    body.__name__ = body.__qualname__ = task_id
    body.__doc__ = step.description
    return task(task_id=task_id, task_display_name=step.description, **step.task_options)(body)


def services(task_id: str) -> tuple[Store, OssBssClient]:
    """The store, through the `usergroup_default` connection, and the OSS/BSS client the `usergroup_ossbss`
    connection names."""
    hook = UserGroupHook()
    try:
        return hook.store, OssBssHook(store=hook).client
    except ValueError as exc:  # no store or OSS/BSS connection, or a bad one: no retry cures it
        raise AirflowFailException(f"{task_id}: {exc}") from None


class MissingStateError(RuntimeError):
    """A task that is not the first got no state."""


def opening_of(workflow: "Workflow", dag_run: Any) -> dict[str, Any]:
    """What the process row records of the run that opens it."""
    return {"workflow_name": workflow.name, "workflow_target": str(workflow.target), "dag_id": dag_run.dag_id,
            "run_id": dag_run.run_id, "created_by": _triggered_by(dag_run)}


def _triggered_by(dag_run: Any) -> str:
    run_type = getattr(dag_run, "run_type", None)
    user = getattr(dag_run, "triggering_user_name", None)
    return ":".join(str(p) for p in (getattr(run_type, "value", run_type), user) if p)


def _pydantic_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
