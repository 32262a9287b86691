"""The one adapter that turns a step into an Airflow task: the engine's runner for one process, its failures as
Airflow's."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, NoReturn
from uuid import UUID

from airflow.sdk import Variable, task
from airflow.sdk.exceptions import AirflowFailException
from pydantic import ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy.exc import InterfaceError, OperationalError

from usergroup.airflow.events import alias, announce, mark_announced
from usergroup.airflow.services import services
from usergroup.domain.subscription import products_of_type
from usergroup.engine.generic_steps import done
from usergroup.engine.process_id import process_id_for
from usergroup.engine.runner import (
    PERMANENT_ERRORS,
    TaskTry,
    record_failures,
    run_one,
    stopped_by_sigterm,
)
from usergroup.engine.step import State, Step
from usergroup.engine.workflow import Init
from usergroup.ossbss.client import OssBssClient
from usergroup.settings import Settings, settings
from usergroup.store.errors import ProcessAbortedError
from usergroup.store.repository import Store

if TYPE_CHECKING:
    from usergroup.engine.workflow import Workflow

def customer_id() -> str:
    """The customer of the subscriptions a run makes: the Airflow Variable `usergroup_customer_id`, if set."""
    return Variable.get(Settings.customer_variable, default=str(settings().default_customer_id))


def initial_state(workflow: "Workflow", params: dict[str, Any], dag_run: Any, customer_id: str,
                  per_subscription: bool = False) -> State:
    """orchestrator-core's `init`: the process, the workflow and the validated form fields."""
    fields = {name: params.get(name) for name in workflow.form.model_fields}
    try:
        validated = workflow.form.model_validate(fields)
    except ValidationError as exc:
        raise AirflowFailException(f"Invalid input: {pydantic_message(exc)}") from None
    try:
        customer = UUID(customer_id)
    except ValueError:
        raise AirflowFailException(f"Airflow Variable {Settings.customer_variable} is not a UUID: "
                                   f"{customer_id!r}") from None
    products = products_of_type(workflow.product_type)  # a create's form may choose one of several
    product_id = getattr(validated, "product", None) or (products[0].product_id if len(products) == 1 else None)
    init = Init(process_id=process_id_for(dag_run.dag_id, dag_run.run_id,
                                          validated.subscription_id if per_subscription else None),
                workflow_name=workflow.name, workflow_target=str(workflow.target), product_type=workflow.product_type,
                product_id=product_id, customer_id=customer)
    return to_jsonable_python({**init, **validated.model_dump()})


def run_step(step: Step, state: State, *, store: Store, oss: OssBssClient, try_number: int,
             task_id: str | None = None, map_index: int = -1, start: dict[str, Any] | None = None,
             hostname: str | None = None, checks: tuple[Step, ...] = ()) -> State:
    """Run one try of the task `task_id` (default: the step's name) over `state` (`engine.runner.run_one`); a
    failure another try cannot cure fails the task at once (AirflowFailException), any other is raised for
    Airflow to retry (a store out of reach as StoreUnavailableError)."""
    task_id = task_id or step.name
    task = TaskTry(step=step, task_id=task_id, workflow_target=state["workflow_target"], try_number=try_number,
                   map_index=map_index, hostname=hostname)
    with airflow_errors(task_id):
        return run_one(task, state, store=store, oss=oss, opening=start, checks=checks)


@contextmanager
def airflow_errors(task_id: str) -> Iterator[None]:
    """The engine's failures as Airflow's: one another try cannot cure fails the task at once
    (AirflowFailException), a store out of reach is StoreUnavailableError (retried), any other is raised as it is."""
    try:
        yield
    except ProcessAbortedError as exc:  # the process keeps its abort; the task fails at once
        raise AirflowFailException(f"{task_id}: {exc}") from None
    except PERMANENT_ERRORS as exc:  # refused, or no retry cures it
        raise AirflowFailException(f"{task_id}: {exc}") from exc
    except (OperationalError, InterfaceError) as exc:
        raise StoreUnavailableError(f"{task_id}: the usergroup store is unavailable, nothing of this step was "
                                    f"committed; Airflow retries it: {exc.orig}") from exc


class StoreUnavailableError(RuntimeError):
    """The store could not be reached or dropped the connection mid-step: transient, so retried."""


def step_task(step: Step, workflow: "Workflow", *, task_id: str | None = None, first: bool = False):
    """The TaskFlow task of `step` in `workflow`, its task id the step's name (or `task_id`), its display name
    the step's description. The `first` task (decided when the DAG is built) validates the input form, builds
    the initial state and opens the process; every other task takes the state its upstream task returned."""
    task_id = task_id or step.name

    def body(state: State | None = None, *, params=None, dag_run=None, ti=None, outlet_events=None):
        opening = opening_of(workflow, dag_run)
        if first:
            if unknown := sorted(set(getattr(dag_run, "conf", None) or {}) - set(workflow.params)):
                raise AirflowFailException(f"Invalid input: {', '.join(map(repr, unknown))} not a parameter of "
                                           f"{workflow.name} (its parameters: {', '.join(workflow.params)})")
            state = initial_state(workflow, dict(params or {}), dag_run, customer_id())
        store, oss = services(task_id)
        row = {"task_id": task_id, "map_index": getattr(ti, "map_index", -1), "try_number": ti.try_number,
               "hostname": getattr(ti, "hostname", None)}
        if state is None:  # its upstream task returned nothing: it was marked success by hand, or never ran
            missing_state(store, TaskTry(step=step, workflow_target=str(workflow.target), **row), opening, params)
        with stopped_by_sigterm():
            state = run_step(step, state, store=store, oss=oss, task_id=task_id, map_index=row["map_index"],
                             try_number=row["try_number"], start=opening if first else None, hostname=row["hostname"],
                             checks=workflow.checks if first else ())
        if step is done:
            with airflow_errors(task_id):
                announce(store, outlet_events, [UUID(state["process_id"])])
        return state

    body.__name__ = body.__qualname__ = task_id
    body.__doc__ = step.description
    return task(task_id=task_id, task_display_name=step.description, **step.task_options,
                **(announcing(workflow) if step is done else {}))(body)


def announcing(workflow: "Workflow") -> dict[str, Any]:
    """The options of the task that completes the workflow's processes: it emits their events (`events`)."""
    return {"outlets": [alias(workflow.product_type)],
            "on_success_callback": partial(mark_announced, workflow.product_type)}


def missing_state(store: Store, task: TaskTry, opening: dict[str, Any], params: Any) -> NoReturn:
    exc = MissingStateError(f"{task.task_id}: no state from the upstream task (was it marked success by hand?); "
                            "clear the run's first failed or skipped task with its downstream tasks")
    process_id = process_id_for(opening["dag_id"], opening["run_id"])
    record_failures(store, task, {process_id: exc}, datetime.now(UTC),
                    opening={**opening, "input_state": dict(params or {})})
    raise AirflowFailException(str(exc))


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


def pydantic_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
