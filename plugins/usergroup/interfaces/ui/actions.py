"""What the pages' forms post: start a workflow, set in sync, resume or abort a process (after a confirmation).
Each calls the operations layer (as the API and the CLI do), so the rules and the reasons are the same."""

from uuid import UUID

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from usergroup.engine.discovery import all_workflows
from usergroup.interfaces.deps import Reader, User, may_run, may_set_in_sync, operations, process_or_404, store
from usergroup.interfaces.operations import Invalid, OperationError
from usergroup.interfaces.ui.csrf import check_csrf
from usergroup.interfaces.ui.html import UI, page
from usergroup.interfaces.ui.pages import process_view, subscription_view
from usergroup.interfaces.ui.workflow_form import page_field, posted_pages

router = APIRouter()
ACTIONS = {"resume": ("Resume", "Clear its failed task: the run goes on from there."),
           "abort": ("Abort", "None of its steps will run any more, and its DAG run is marked failed. This cannot be "
                              "undone.")}


@router.post("/subscriptions/{subscription_id}/start/{workflow_key}", response_class=HTMLResponse)
async def start(request: Request, subscription_id: UUID, workflow_key: str, user: User):
    posted = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    check_csrf(request, posted.pop("csrf_token", None))
    workflow = all_workflows().get(workflow_key)
    with store().transaction() as repo:
        product = repo.product_of(subscription_id)
    if product is None:
        raise HTTPException(404, f"no subscription {subscription_id}")
    field = page_field(workflow, product.product_type) if workflow else None
    if field is None:
        raise HTTPException(404, f"no workflow {workflow_key!r} on the page of a {product.name}")
    posted[field] = str(subscription_id)  # the page's subscription, whatever the body says
    try:
        started = operations().start(workflow_key, posted_pages(workflow, posted), user.get_name(),
                                     allow=lambda dag: may_run(user, dag))
    except Invalid as exc:
        body = exc.body or {}
        errors = {workflow_key: [e["msg"] if not e["loc"] else f"{e['loc'][-1]}: {e['msg']}"
                                 for e in body.get("validation_errors", [])] or [exc.reason]}
        return subscription_view(request, subscription_id, user, exc.status, errors=errors,
                                 posted={workflow_key: posted})
    except OperationError as exc:
        raise HTTPException(exc.status, exc.reason) from None
    return _back(request, f"/processes/{started}?done=started")


@router.post("/subscriptions/{subscription_id}/set_in_sync", response_class=HTMLResponse)
async def set_in_sync(request: Request, subscription_id: UUID, user: User):
    check_csrf(request, (await request.form()).get("csrf_token"))
    may_set_in_sync(user)
    try:
        operations().set_in_sync(subscription_id)
    except OperationError as exc:
        if exc.status != 409:
            raise HTTPException(exc.status, exc.reason) from None
        return subscription_view(request, subscription_id, user, 409, error=exc.reason)
    return _back(request, f"/subscriptions/{subscription_id}?done=in_sync")


@router.post("/processes/{process_id}/answer", response_class=HTMLResponse)
async def answer(request: Request, process_id: UUID, user: User):
    """The answer to the form a suspended process waits for (the button pressed is its option)."""
    posted = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    check_csrf(request, posted.pop("csrf_token", None))
    try:
        operations().resume(process_id, allow=lambda dag: may_run(user, dag), pages=[posted], user=user.get_name())
    except OperationError as exc:
        if exc.status not in (400, 409, 510):
            raise HTTPException(exc.status, exc.reason) from None
        return process_view(request, process_id, user, exc.status, error=exc.reason, posted=posted)
    return _back(request, f"/processes/{process_id}?done=answered")


@router.get("/processes/{process_id}/{action}", response_class=HTMLResponse)
def confirm(request: Request, process_id: UUID, action: str, user: Reader) -> HTMLResponse:
    if action not in ACTIONS:
        raise HTTPException(404, f"no action {action!r} (resume or abort)")
    with store().transaction() as repo:
        process = process_or_404(repo, process_id)
    return page(request, "confirm.html", process=process, action=action, label=ACTIONS[action][0],
                what=ACTIONS[action][1], error="")


@router.post("/processes/{process_id}/{action}", response_class=HTMLResponse)
async def act(request: Request, process_id: UUID, action: str, user: User):
    check_csrf(request, (await request.form()).get("csrf_token"))
    if action not in ACTIONS:
        raise HTTPException(404, f"no action {action!r} (resume or abort)")
    try:
        if action == "resume":
            operations().resume(process_id, allow=lambda dag: may_run(user, dag))
        else:
            operations().abort(process_id, f"aborted by {user.get_name()} in the Subscriptions page",
                               allow=lambda dag: may_run(user, dag))
    except OperationError as exc:
        if exc.status not in (409, 503):
            raise HTTPException(exc.status, exc.reason) from None
        with store().transaction() as repo:
            process = repo.get_process(process_id)
        return page(request, "confirm.html", exc.status, process=process, action=action,
                    label=ACTIONS[action][0], what=ACTIONS[action][1], error=exc.reason)
    return _back(request, f"/processes/{process_id}?done={ {'resume': 'resumed', 'abort': 'aborted'}[action]}")


def _back(request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(request.scope.get("root_path", "") + UI + path, status_code=303)
