"""/api/processes: start a workflow from form pages, read processes, resume and abort them."""

from types import SimpleNamespace
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Body, HTTPException, Response
from pydantic_core import to_jsonable_python

from usergroup.airflow.runs import RunBusyError, abort, clear_failed_tasks
from usergroup.airflow.tasks import initial_state
from usergroup.domain import ProcessStatus
from usergroup.engine.discovery import all_workflows
from usergroup.engine.process_id import process_id_for
from usergroup.engine.step import StepContext
from usergroup.interfaces.deps import Reader, User, may_run, page_range, process_or_404, store
from usergroup.interfaces.form_pages import FormError, invalid, validate_pages
from usergroup.interfaces.views import process_json
from usergroup.settings import Settings, settings
from usergroup.store.errors import StoreError

router = APIRouter()
FILTERS = {"lastStatus": "status", "last_status": "status", "workflowName": "workflow_name",
           "workflow_name": "workflow_name", "workflowTarget": "workflow_target", "workflow_target": "workflow_target"}
SORTS = {"startedAt": "started_at", "started_at": "started_at", "lastModifiedAt": "last_modified_at",
         "last_modified_at": "last_modified_at", "workflowName": "workflow_name", "lastStatus": "status"}


@router.post("/{workflow_key}", status_code=201)
def new_process(workflow_key: str, user: User, pages: Annotated[Any, Body()]) -> dict[str, str]:
    """Validate the pages as the DAG's first task would, open the process (`created`) and trigger its run."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.models.variable import Variable
    from airflow.sdk.exceptions import ParamValidationError
    from airflow.utils.types import DagRunTriggeredByType

    workflow = all_workflows().get(workflow_key)
    if workflow is None:
        raise HTTPException(404, f"no workflow {workflow_key!r} (one of: {', '.join(sorted(all_workflows()))})")
    may_run(user, workflow.name)
    conf = validate_pages(workflow, pages)
    run_id, name = f"api__{uuid4()}", user.get_name()
    run = SimpleNamespace(dag_id=workflow.name, run_id=run_id)
    customer = Variable.get(Settings.customer_variable, default_var=str(settings().default_customer_id))
    state = initial_state(workflow, conf, run, customer)
    refuse_as_the_first_task_would(workflow, state)
    process_id = process_id_for(workflow.name, run_id)
    with store().transaction() as repo:
        repo.start_process(process_id, workflow_name=workflow.name, workflow_target=str(workflow.target),
                           dag_id=workflow.name, run_id=run_id, created_by=f"manual:{name}", input_state=state)
    try:
        trigger_dag(workflow.name, run_id=run_id, conf=conf, triggered_by=DagRunTriggeredByType.REST_API,
                    triggering_user_name=name)
    except Exception as exc:  # nothing runs: the process says why, and the client gets the reason
        with store().transaction() as repo:
            repo.abort_process(process_id, f"its DAG run could not be created: {type(exc).__name__}: {exc}")
        if isinstance(exc, ParamValidationError):
            raise FormError(400, {"type": "FormValidationError", "title": "Form not valid", "status": 400,
                                  "detail": str(exc), "validation_errors": [{"loc": [], "msg": str(exc),
                                                                              "type": "value_error"}]}) from None
        raise HTTPException(503, f"{workflow.name} could not be triggered: {type(exc).__name__}: {exc}") from None
    return {"id": str(process_id)}


@router.get("/")
def list_processes(user: Reader, response: Response, range: str | None = None, sort: str | None = None,
                   filter: str | None = None) -> list[dict]:
    """Newest first; `filter=lastStatus,failed,workflowName,create_user`, `sort=startedAt,asc`, `range=0,20`."""
    where, sorts = _pairs(filter, FILTERS, "filter"), _pairs(sort, SORTS, "sort") or {"started_at": "desc"}
    if bad := [o for o in sorts.values() if o not in ("asc", "desc")]:
        raise HTTPException(400, f"sort order {bad[0]!r}: asc or desc")
    start, end = page_range(range)
    with store().transaction() as repo:
        found = repo.list_processes(order=[(k, o == "desc") for k, o in sorts.items()], offset=start,
                                    limit=None if end is None else end - start, **where)
        response.headers["Content-Range"] = f"processes {start}-{start + len(found)}/{repo.count_processes(**where)}"
        return [process_json(repo, p, detail=False) for p in found]


@router.get("/{process_id}")
def get_process(process_id: UUID, user: Reader) -> dict:
    with store().transaction() as repo:
        return process_json(repo, process_or_404(repo, process_id))


@router.put("/{process_id}/resume", status_code=204)
def resume(process_id: UUID, user: User, pages: Annotated[Any, Body()] = None) -> Response:
    """Clear the failed task of its run (and those that did not run because of it): the run goes on from there.
    The process row is locked meanwhile: of concurrent resumes one clears, the others find it running (a second
    clear would restart the task the first one started)."""
    with store().transaction() as repo:
        process = process_or_404(repo, process_id, lock=True)
        may_run(user, process["dag_id"])
        if process["status"] != ProcessStatus.FAILED:
            raise HTTPException(409, f"process {process_id} is {process['status']}: only a failed process can be "
                                     "resumed")
        try:
            clear_failed_tasks(process["dag_id"], process["run_id"], process["map_index"])
        except RunBusyError as exc:
            raise HTTPException(409, f"process {process_id} cannot be resumed now: {exc}") from None
        repo.resume_process(process_id)  # its client polls: it is running again, not failed
    return Response(status_code=204)


@router.put("/{process_id}/abort", status_code=204)
def abort_process(process_id: UUID, user: User) -> Response:
    abort_for(user, process_id, "over the API")
    return Response(status_code=204)


def abort_for(user, process_id: UUID, where: str) -> None:
    """Abort the process for `user`, recording where it was asked (over the API, in the Subscriptions page)."""
    with store().transaction() as repo:
        process = process_or_404(repo, process_id)
    may_run(user, process["dag_id"])
    if process["status"] in (ProcessStatus.COMPLETED, ProcessStatus.ABORTED):
        raise HTTPException(409, f"process {process_id} is {process['status']}: it cannot be aborted")
    _, airflow_error = abort(store(), process, f"aborted by {user.get_name()} {where}")
    if airflow_error:
        raise HTTPException(503, f"process {process_id} is aborted, but its Airflow run could not be marked failed "
                                 f"({airflow_error.split(':')[0]}): mark it failed in Airflow")


def refuse_as_the_first_task_would(workflow, state: dict) -> None:
    """Run the workflow's input checks (the subscription exists, is of its product and may run it now; a name is
    free) as its first task does, changing nothing: what they refuse is a 400 here, and no run starts."""
    try:
        with store().rolled_back() as repo:
            for check in workflow.checks:
                state = {**state, **to_jsonable_python(check(state, StepContext(store=repo)))}
    except (StoreError, ValueError) as exc:
        raise FormError(400, invalid([{"loc": [], "msg": str(exc), "type": "value_error"}])) from None


def _pairs(value: str | None, known: dict[str, str], what: str) -> dict[str, str]:
    parts = value.split(",") if value else []
    if len(parts) % 2:
        raise HTTPException(400, f"{what}: give field,value pairs")
    unknown = [f for f in parts[::2] if f not in known]
    if unknown:
        raise HTTPException(400, f"{what}: unknown field {unknown[0]!r} (one of: {', '.join(sorted(known))})")
    if len({known[f] for f in parts[::2]}) < len(parts) // 2:
        raise HTTPException(400, f"{what}: a field given twice")
    return {known[f]: v for f, v in zip(parts[::2], parts[1::2], strict=True)}
