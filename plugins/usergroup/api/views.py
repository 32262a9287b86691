"""orchestrator-core's JSON shapes: a product, a subscription's domain model, a process with its steps."""

from typing import Any

from pydantic_core import to_jsonable_python

from usergroup.domain import Product, SubscriptionModel
from usergroup.report import SUBSCRIPTION_COLUMNS
from usergroup.runs import retrying
from usergroup.store.repository import Repository
from usergroup.workflows import all_workflows

PROCESS_COLUMNS = ("process_id", "workflow_name", "workflow_target", "last_step", "failed_reason", "created_by",
                   "started_at", "last_modified_at", "dag_id", "run_id")


def product_json(product: Product) -> dict[str, Any]:
    return to_jsonable_python({
        "product_id": product.product_id, "name": product.name, "description": product.description,
        "product_type": product.product_type, "status": product.status, "tag": product.tag,
        "fixed_inputs": [f.model_dump() for f in product.fixed_inputs]})


def domain_model(sub: SubscriptionModel) -> dict[str, Any]:
    """The subscription's fields, its product and its product type's own fields (its block under its key)."""
    view = {c: getattr(sub, c) for c in SUBSCRIPTION_COLUMNS}
    view.update(sub.product_fields())
    return to_jsonable_python(view) | {"product": product_json(sub.product)}


def subscription_summary(sub: SubscriptionModel) -> dict[str, Any]:
    return to_jsonable_python({c: getattr(sub, c) for c in ("subscription_id", "description", "status", "insync",
                                                             "customer_id", "start_date", "end_date")}) \
        | {"product": product_json(sub.product)}


def process_json(repo: Repository, process: dict[str, Any], detail: bool = True) -> dict[str, Any]:
    """A process as orchestrator-core shows it: `last_status`, every try of every step and, for the tasks not
    yet done (unless it was aborted), `{"name", "status": "pending"}`; `current_state` is the state the last step
    left."""
    view = {c: process[c] for c in PROCESS_COLUMNS} | {"last_status": process["status"], "is_task": False}
    if process["status"] == "failed" and retrying(process["dag_id"], process["run_id"], process["map_index"]):
        view["last_status"] = "waiting"  # orchestrator-core's word for a failed step that will be retried
    steps = repo.steps_of(process["process_id"])
    done = {s["task_id"] for s in steps if s["status"] in ("success", "replayed")}
    workflow = all_workflows().get(process["workflow_name"])
    view["steps"] = [{"name": s["name"], "task_id": s["task_id"], "status": s["status"], "started": s["started_at"],
                      "executed": s["completed_at"],
                      "try_number": s["try_number"], **({"state": s["state"]} if detail else {}),
                      **({"error": s["error"]} if s["error"] else {})} for s in steps]
    view["steps"] += [{"name": step.name, "task_id": task_id, "status": "pending"}
                      for step, task_id in zip(workflow.steps, workflow.task_ids, strict=True) if task_id not in done] \
        if workflow and process["status"] != "aborted" else []  # an aborted process runs no more steps
    succeeded = [s for s in steps if s["status"] == "success"]
    if detail:
        view["traceback"] = process["traceback"]
        view["current_state"] = succeeded[-1]["state"] if succeeded else process["input_state"]
    view["subscriptions"] = [subscription_summary(repo.get_subscription(s))
                             for s in repo.subscriptions_of(process["process_id"])]
    return to_jsonable_python(view)
