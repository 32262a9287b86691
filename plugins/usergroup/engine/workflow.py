"""A workflow declared once: its name, target, input form and chain of steps; its DAG renders it."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict
from uuid import UUID

from pydantic import BaseModel

from usergroup.domain import SubscriptionLifecycle, Target
from usergroup.engine.generic_steps import (
    check_subscription,
    done,
    resync,
    set_status,
    store_process_subscription,
    unsync,
)
from usergroup.engine.input_step import InputStep
from usergroup.engine.params import params_of
from usergroup.engine.step import Step, StepError


class Init(TypedDict):
    """orchestrator-core's `init`: what a process's state holds before its form's fields and its steps' returns."""

    process_id: UUID
    workflow_name: str
    workflow_target: str
    product_type: str
    product_id: UUID | None  # None where the form chooses the product
    customer_id: UUID


@dataclass(frozen=True)
class Workflow:
    name: str  # the DAG id
    description: str  # the DAG's doc_md; its first line is the workflow's title
    target: Target
    product_type: str  # the product type it serves (orchestrator-core links workflows to products)
    form: type[BaseModel]  # the only input declaration: validates the input at the first task
    steps: tuple[Step, ...]
    tags: tuple[str, ...] = ()
    checks: tuple[Step, ...] = ()  # the input's checks against the store, run by the first task before its step

    def __post_init__(self):
        """Each step's arguments are in the state when it runs: `Init`, the form's fields, or an earlier step's
        returns. A misspelled parameter fails here, where the DAG is parsed."""
        if isinstance(self.steps[0], InputStep):
            raise StepError(f"workflow {self.name}: its first step {self.steps[0].name} cannot ask (it opens the "
                            "process)")
        known = set(Init.__annotations__) | set(self.form.model_fields)
        for s in (*self.checks, *self.steps):
            if missing := s.takes - known:
                raise StepError(f"workflow {self.name}: step {s.name} takes {', '.join(sorted(missing))}, which "
                                "neither the process, the form nor an earlier step gives")
            known |= s.returns

    @property
    def params(self) -> dict[str, dict[str, Any]]:
        """The JSON schema of each form field, derived from the form: Airflow's params (the trigger form)."""
        return params_of(self.form)

    @property
    def title(self) -> str:
        return self.description.strip().splitlines()[0].lstrip("# ")

    def step_at(self, task_id: str) -> Step | None:
        """The step its task `task_id` runs."""
        return dict(zip(self.task_ids, self.steps, strict=True)).get(task_id)

    @property
    def task_ids(self) -> list[str]:
        """One task per step, named for it; a step that comes again is `name__1`, `name__2` (as Airflow names
        a repeated task id)."""
        seen: dict[str, int] = {}
        ids = []
        for s in self.steps:
            n = seen[s.name] = seen.get(s.name, -1) + 1
            ids.append(f"{s.name}__{n}" if n else s.name)
        return ids


@dataclass(frozen=True)
class Schedule:
    """A workflow run on a schedule for every subscription `select` picks (orchestrator-core's scheduler tasks):
    one process per subscription, each a mapped instance of one task."""

    name: str  # the DAG id
    description: str
    workflow: Workflow
    schedule: str  # a cron expression or preset ("@daily")
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Bulk:
    """A workflow run for many items at once (a list of inputs in one run): each of its tasks runs its step for
    every item, a chunk of them per transaction, and every item is a process of its own. `form` is the run's form
    (its `params` derive from it); `items` turns the run's params into each item's form fields (a source read by
    the reader it is given; bad input refused before anything is written); `prepare` gives a step, by name, a
    service answered for the whole chunk at once (a batch call)."""

    name: str  # the DAG id
    description: str
    workflow: Workflow
    form: type[BaseModel]
    items: Callable[[dict[str, Any], Callable[[str], list[str]]], list[dict[str, Any]]]
    prepare: dict[str, Callable[..., Any]] = field(default_factory=dict)
    tags: tuple[str, ...] = ()

    def __post_init__(self):
        if unknown := set(self.prepare) - {s.name for s in self.workflow.steps}:
            raise StepError(f"bulk {self.name}: prepare names {', '.join(sorted(unknown))}, not a step of "
                            f"{self.workflow.name}")

    @property
    def params(self) -> dict[str, dict[str, Any]]:
        """The JSON schema of each field of the run's form: Airflow's params (the trigger form)."""
        return params_of(self.form)


def _declare(target: Target, name: str, description: str, product_type: str, form: type[BaseModel],
             steps: tuple[Step, ...], checks: tuple[Step, ...] = ()) -> Workflow:
    return Workflow(name=name, description=description, target=target, product_type=product_type, form=form,
                    steps=steps, tags=("usergroup", "orchestrator", str(target).lower()), checks=checks)


def create_workflow(name: str, description: str, product_type: str, form: type[BaseModel],
                    steps: list[Step], checks: tuple[Step, ...] = (),
                    status: SubscriptionLifecycle = SubscriptionLifecycle.ACTIVE) -> Workflow:
    """orchestrator-core's `create_workflow`: the workflow's own steps, then `set_status(status) >> resync >>
    done`."""
    return _declare(Target.CREATE, name, description, product_type, form,
                    (*steps, set_status(status), resync, done), checks)


def modify_workflow(name: str, description: str, product_type: str, form: type[BaseModel],
                    steps: list[Step], checks: tuple[Step, ...] = ()) -> Workflow:
    """orchestrator-core's `modify_workflow`: `store_process_subscription(MODIFY) >> unsync`, the workflow's own
    steps, then `resync >> done`. The first task checks the subscription may be modified, then `checks`."""
    return _declare(Target.MODIFY, name, description, product_type, form,
                    (store_process_subscription(Target.MODIFY), unsync, *steps, resync, done),
                    (check_subscription(Target.MODIFY), *checks))


def terminate_workflow(name: str, description: str, product_type: str, form: type[BaseModel],
                       steps: list[Step]) -> Workflow:
    """orchestrator-core's `terminate_workflow`: `store_process_subscription(TERMINATE) >> unsync`, the
    workflow's own steps, then `set_status(TERMINATED) >> resync >> done`."""
    return _declare(Target.TERMINATE, name, description, product_type, form,
                    (store_process_subscription(Target.TERMINATE), unsync, *steps,
                     set_status(SubscriptionLifecycle.TERMINATED), resync, done),
                    (check_subscription(Target.TERMINATE),))


def validate_workflow(name: str, description: str, product_type: str, form: type[BaseModel],
                      steps: list[Step]) -> Workflow:
    """orchestrator-core's `validate_workflow`: `store_process_subscription(VALIDATE) >> unsync`, the checks,
    then `resync >> done`. A check that fails leaves the subscription out of sync until an operator acts."""
    return _declare(Target.VALIDATE, name, description, product_type, form,
                    (store_process_subscription(Target.VALIDATE), unsync, *steps, resync, done),
                    (check_subscription(Target.VALIDATE),))
