"""A workflow declared once: its name, target, input form and chain of steps; its DAG renders it."""

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from usergroup.domain import SubscriptionLifecycle, Target
from usergroup.step import Step
from usergroup.steps import done, resync, set_status, store_process_subscription, unsync


@dataclass(frozen=True)
class Workflow:
    name: str  # the DAG id
    description: str  # the DAG's doc_md
    target: Target
    form: type[BaseModel]  # validates the input at the first task
    params: dict[str, dict[str, Any]]  # the JSON schema of each form field: Airflow's trigger form
    steps: tuple[Step, ...]
    tags: tuple[str, ...] = ()
    check: Step | None = None  # the input's checks against the store, run by the first task before its step

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


def create_workflow(name: str, description: str, form: type[BaseModel], params: dict[str, dict[str, Any]],
                    steps: list[Step], status: SubscriptionLifecycle = SubscriptionLifecycle.ACTIVE) -> Workflow:
    """orchestrator-core's `create_workflow`: the workflow's own steps, then `set_status(status) >> resync >>
    done`."""
    return Workflow(name=name, description=description, target=Target.CREATE, form=form, params=params,
                    steps=(*steps, set_status(status), resync, done), tags=("usergroup", "orchestrator", "create"))


def terminate_workflow(name: str, description: str, form: type[BaseModel], params: dict[str, dict[str, Any]],
                       steps: list[Step], check: Step) -> Workflow:
    """orchestrator-core's `terminate_workflow`: `store_process_subscription(TERMINATE) >> unsync`, the
    workflow's own steps, then `set_status(TERMINATED) >> resync >> done`."""
    return Workflow(name=name, description=description, target=Target.TERMINATE, form=form, params=params,
                    steps=(store_process_subscription(Target.TERMINATE), unsync, *steps,
                           set_status(SubscriptionLifecycle.TERMINATED), resync, done),
                    tags=("usergroup", "orchestrator", "terminate"), check=check)
