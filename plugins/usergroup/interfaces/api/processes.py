"""/api/processes: start a workflow from form pages, read processes, resume and abort them."""

import re
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Path, Query, Response
from starlette.convertors import StringConvertor, register_url_convertor

from usergroup.engine.discovery import all_workflows
from usergroup.interfaces.contract import CONTENT_RANGE, FORM, RANGE, answers, pairs, shaped
from usergroup.interfaces.deps import Reader, User, may_run, operations, page_range, process_or_404, store
from usergroup.interfaces.views import process_json

router = APIRouter()
FILTERS = {"lastStatus": "status", "last_status": "status", "workflowName": "workflow_name",
           "workflow_name": "workflow_name", "workflowTarget": "workflow_target", "workflow_target": "workflow_target"}
SORTS = {"startedAt": "started_at", "started_at": "started_at", "lastModifiedAt": "last_modified_at",
         "last_modified_at": "last_modified_at", "workflowName": "workflow_name", "lastStatus": "status"}
FILTER = pairs(*FILTERS, values="[^,]*")
SORT = pairs(*SORTS, values="(?:asc|desc)")
PAGES = {"type": "array", "items": {"type": "object"}, "description": "The form's pages, as orchestrator-core takes "
         "them: `[]` answers 510 with the first page's form, each page given the next"}
NO_PROCESS = {404: "No process with this id"}
WORKFLOWS = sorted(all_workflows())


class WorkflowKey(StringConvertor):
    """A path segment that names a workflow: a POST to a process's path is 405 (it serves GET), not 404."""

    regex = "|".join(map(re.escape, WORKFLOWS))


register_url_convertor("usergroup_workflow", WorkflowKey())


@router.get("/", responses={**answers({400: "A `filter`, `sort` or `range` not of its shape"}),
                            200: {"headers": CONTENT_RANGE}})
def list_processes(
    user: Reader, response: Response,
    range: Annotated[str | None, Query(json_schema_extra={"pattern": RANGE})] = None,
    sort: Annotated[str | None, Query(json_schema_extra={"pattern": SORT})] = None,
    filter: Annotated[str | None, Query(json_schema_extra={"pattern": FILTER})] = None,
) -> list[dict]:
    """Newest first; `filter=lastStatus,failed,workflowName,create_user` (all must hold), `sort=startedAt,asc`,
    `range=0,20`."""
    where = _where(_pairs(shaped(filter, FILTER, "filter", f"give field,value pairs, the fields of "
                                                       f"{', '.join(FILTERS)}"), FILTERS))
    sorts: dict[str, str] = {}
    for column, order in _pairs(shaped(sort, SORT, "sort", f"give field,asc|desc pairs, the fields of "
                                                          f"{', '.join(SORTS)}"), SORTS):
        sorts.setdefault(column, order)  # a column given twice: its first order
    sorts = sorts or {"started_at": "desc"}
    start, end = page_range(range)
    with store().transaction() as repo:
        found, total = [], 0
        if where is not None:
            found = repo.list_processes(order=[(k, o == "desc") for k, o in sorts.items()], offset=start,
                                        limit=None if end is None else end - start, **where)
            total = repo.count_processes(**where)
        response.headers["Content-Range"] = f"processes {start}-{start + len(found)}/{total}"
        return [process_json(repo, p, detail=False) for p in found]


@router.get("/{process_id:uuid}", responses=answers(NO_PROCESS))
def get_process(process_id: UUID, user: Reader) -> dict:
    with store().transaction() as repo:
        return process_json(repo, process_or_404(repo, process_id))


@router.post("/{workflow_key:usergroup_workflow}", status_code=201, responses=answers({
    **FORM, 404: "No workflow of this name",
    503: "Airflow could not create the run (nothing was started)"}))
def new_process(
    workflow_key: Annotated[str, Path(json_schema_extra={"enum": WORKFLOWS})],
    user: User, pages: Annotated[Any, Body(json_schema_extra=PAGES)],
) -> dict[str, str]:
    """Validate the pages as the DAG's first task would, open the process (`created`) and trigger its run."""
    process_id = operations().start(workflow_key, pages, user.get_name(), allow=lambda dag: may_run(user, dag))
    return {"id": str(process_id)}


@router.put("/{process_id}/resume", status_code=204, responses=answers({
    **FORM, **NO_PROCESS,
    409: "The process waits for no answer, is not failed, or its task cannot take the answer now"}))
def resume(process_id: UUID, user: User, pages: Annotated[Any, Body(json_schema_extra=PAGES)] = None) -> Response:
    """A suspended process: the answer to the form it waits for (`[{...}]`; 400 naming a wrong field, 510 with the
    form if none is given). A failed one: clear the failed task of its run (and those that did not run because of
    it), the run goes on from there (`[{}]`)."""
    operations().resume(process_id, allow=lambda dag: may_run(user, dag), pages=pages, user=user.get_name())
    return Response(status_code=204)


@router.put("/{process_id}/abort", status_code=204, responses=answers({
    **NO_PROCESS, 409: "The process is completed or aborted already",
    503: "The process is aborted, but Airflow could not mark its run failed"}))
def abort_process(process_id: UUID, user: User) -> Response:
    operations().abort(process_id, f"aborted by {user.get_name()} over the API", allow=lambda dag: may_run(user, dag))
    return Response(status_code=204)


def _pairs(value: str | None, known: dict[str, str]) -> list[tuple[str, str]]:
    """The (column, value) pairs of a `filter` or `sort` of its shape."""
    parts = value.split(",") if value else []
    return [(known[field], given) for field, given in zip(parts[::2], parts[1::2], strict=True)]


def _where(conditions: list[tuple[str, str]]) -> dict[str, str] | None:
    """A filter's conditions, all of which must hold: None if it asks one column for two values (none matches)."""
    where: dict[str, str] = {}
    return None if any(where.setdefault(column, given) != given for column, given in conditions) else where
