"""The JSON views, one set for every interface: orchestrator-core's shapes (a product, a subscription's domain model,
a process with its steps: the API and the pages) and the plain records the CLI prints."""

from typing import Any

from pydantic_core import to_jsonable_python

from usergroup.airflow.runs import retrying
from usergroup.domain import Product, SubscriptionModel
from usergroup.engine.discovery import all_workflows
from usergroup.engine.input_step import InputStep
from usergroup.store.repository import Repository

SUBSCRIPTION_COLUMNS = ("subscription_id", "customer_id", "description", "status", "insync", "start_date",
                        "end_date", "note", "version")
RECORD_PROCESS_COLUMNS = ("process_id", "workflow_name", "workflow_target", "status", "last_step", "failed_reason",
                   "created_by", "dag_id", "run_id", "map_index", "started_at", "last_modified_at")
STEP_COLUMNS = ("name", "task_id", "map_index", "status", "try_number", "hostname", "started_at", "completed_at",
                "error", "note")


def subscription_record(repo: Repository, sub: SubscriptionModel) -> dict[str, Any]:
    """A subscription as a plain record (the CLI prints it, `make run` shows it), with its processes."""
    view = {c: getattr(sub, c) for c in SUBSCRIPTION_COLUMNS}
    view["product"] = sub.product.name
    view.update(sub.product_fields())
    view["processes"] = [process_record(repo, p) for p in repo.processes_of(sub.subscription_id)]
    return to_jsonable_python(view)


def process_record(repo: Repository, process: dict[str, Any], detail: bool = False) -> dict[str, Any]:
    """A process and its steps (one per try); `detail` adds the traceback, each step's state and the
    subscriptions the process touched."""
    view = {c: process[c] for c in RECORD_PROCESS_COLUMNS}
    columns = (*STEP_COLUMNS, "state") if detail else STEP_COLUMNS
    view["steps"] = [{c: s[c] for c in columns} for s in repo.steps_of(process["process_id"])]
    if detail:
        view["traceback"] = process["traceback"]
        view["input_state"] = process["input_state"]
        view["subscriptions"] = repo.subscriptions_of(process["process_id"])
        if form := waiting_form(process):
            view["form"] = form
    return to_jsonable_python(view)

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
    done = {s["task_id"] for s in steps if s["status"] in ("success", "replayed", "suspended")}  # not pending
    workflow = all_workflows().get(process["workflow_name"])
    view["steps"] = [{"name": s["name"], "task_id": s["task_id"], "status": s["status"], "started": s["started_at"],
                      "executed": s["completed_at"],
                      "try_number": s["try_number"], **({"state": s["state"]} if detail else {}),
                      **({"note": s["note"]} if s["note"] else {}),
                      **({"error": s["error"]} if s["error"] else {})} for s in steps]
    view["steps"] += [{"name": step.name, "task_id": task_id, "status": "pending"}
                      for step, task_id in zip(workflow.steps, workflow.task_ids, strict=True) if task_id not in done] \
        if workflow and process["status"] != "aborted" else []  # an aborted process runs no more steps
    succeeded = [s for s in steps if s["status"] == "success"]
    if detail:
        view["traceback"] = process["traceback"]
        view["current_state"] = succeeded[-1]["state"] if succeeded else process["input_state"]
    if form := waiting_form(process):
        view["form"] = form  # as orchestrator-core shows a suspended process's input
    view["subscriptions"] = [subscription_summary(repo.get_subscription(s))
                             for s in repo.subscriptions_of(process["process_id"])]
    return to_jsonable_python(view)


def waiting_form(process: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema of the form a suspended process waits for."""
    workflow = all_workflows().get(process["workflow_name"])
    if process["status"] != "suspended" or workflow is None:
        return None
    step = workflow.step_at(process["last_step"])
    return step.form.json_schema() if isinstance(step, InputStep) else None
