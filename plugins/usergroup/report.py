"""Plain-JSON views of subscriptions and their processes, as the `usergroup` command prints them."""

from typing import Any

from pydantic_core import to_jsonable_python

from usergroup.domain import SubscriptionModel
from usergroup.store.repository import Repository

SUBSCRIPTION_COLUMNS = ("subscription_id", "customer_id", "description", "status", "insync", "start_date",
                        "end_date", "note", "version")
PROCESS_COLUMNS = ("process_id", "workflow_name", "workflow_target", "status", "last_step", "failed_reason",
                   "created_by", "dag_id", "run_id", "map_index", "started_at", "last_modified_at")
STEP_COLUMNS = ("name", "task_id", "map_index", "status", "try_number", "hostname", "started_at", "completed_at",
                "error", "note")


def subscription_json(repo: Repository, sub: SubscriptionModel) -> dict[str, Any]:
    view = {c: getattr(sub, c) for c in SUBSCRIPTION_COLUMNS}
    view["product"] = sub.product.name
    view.update(sub.product_fields())
    view["processes"] = [process_json(repo, p) for p in repo.processes_of(sub.subscription_id)]
    return to_jsonable_python(view)


def process_json(repo: Repository, process: dict[str, Any], detail: bool = False) -> dict[str, Any]:
    """A process and its steps (one per try); `detail` adds the traceback, each step's state and the
    subscriptions the process touched."""
    view = {c: process[c] for c in PROCESS_COLUMNS}
    columns = (*STEP_COLUMNS, "state") if detail else STEP_COLUMNS
    view["steps"] = [{c: s[c] for c in columns} for s in repo.steps_of(process["process_id"])]
    if detail:
        view["traceback"] = process["traceback"]
        view["input_state"] = process["input_state"]
        view["subscriptions"] = repo.subscriptions_of(process["process_id"])
    return to_jsonable_python(view)
