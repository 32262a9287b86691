"""/api/processes: start a workflow from form pages, read processes, resume and abort them."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, HTTPException, Response

from usergroup.interfaces.deps import Reader, User, may_run, operations, page_range, process_or_404, store
from usergroup.interfaces.views import process_json

router = APIRouter()
FILTERS = {"lastStatus": "status", "last_status": "status", "workflowName": "workflow_name",
           "workflow_name": "workflow_name", "workflowTarget": "workflow_target", "workflow_target": "workflow_target"}
SORTS = {"startedAt": "started_at", "started_at": "started_at", "lastModifiedAt": "last_modified_at",
         "last_modified_at": "last_modified_at", "workflowName": "workflow_name", "lastStatus": "status"}


@router.post("/{workflow_key}", status_code=201)
def new_process(workflow_key: str, user: User, pages: Annotated[Any, Body()]) -> dict[str, str]:
    """Validate the pages as the DAG's first task would, open the process (`created`) and trigger its run."""
    process_id = operations().start(workflow_key, pages, user.get_name(), allow=lambda dag: may_run(user, dag))
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
    """A suspended process: the answer to the form it waits for (`[{...}]`; 400 naming a wrong field, 510 with the
    form if none is given). A failed one: clear the failed task of its run (and those that did not run because of
    it), the run goes on from there (`[{}]`)."""
    operations().resume(process_id, allow=lambda dag: may_run(user, dag), pages=pages, user=user.get_name())
    return Response(status_code=204)


@router.put("/{process_id}/abort", status_code=204)
def abort_process(process_id: UUID, user: User) -> Response:
    operations().abort(process_id, f"aborted by {user.get_name()} over the API", allow=lambda dag: may_run(user, dag))
    return Response(status_code=204)


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
