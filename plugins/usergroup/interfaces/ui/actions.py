"""What the pages' forms post: start a workflow, set in sync, resume or abort a process (after a confirmation).
Each runs the API's own route, so the rules, the permissions and the messages are the API's."""

from uuid import UUID

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from usergroup.engine.discovery import all_workflows
from usergroup.interfaces.api import processes, subscriptions
from usergroup.interfaces.deps import Reader, User, process_or_404, store
from usergroup.interfaces.form_pages import FormError
from usergroup.interfaces.ui.csrf import check_csrf
from usergroup.interfaces.ui.html import UI, page
from usergroup.interfaces.ui.pages import subscription_view
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
        started = processes.new_process(workflow_key, user, posted_pages(workflow, posted))
    except FormError as exc:
        errors = {workflow_key: [e["msg"] if not e["loc"] else f"{e['loc'][-1]}: {e['msg']}"
                                 for e in exc.body.get("validation_errors", [])] or [exc.body.get("detail", "")]}
        return subscription_view(request, subscription_id, user, exc.status, errors=errors,
                                 posted={workflow_key: posted})
    return _back(request, f"/processes/{started['id']}?done=started")


@router.post("/subscriptions/{subscription_id}/set_in_sync", response_class=HTMLResponse)
async def set_in_sync(request: Request, subscription_id: UUID, user: User):
    check_csrf(request, (await request.form()).get("csrf_token"))
    try:
        subscriptions.set_in_sync(subscription_id, user)
    except HTTPException as exc:
        if exc.status_code != 409:
            raise
        return subscription_view(request, subscription_id, user, 409, error=exc.detail)
    return _back(request, f"/subscriptions/{subscription_id}?done=in_sync")


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
            processes.resume(process_id, user)
        else:
            processes.abort_for(user, process_id, "in the Subscriptions page")
    except HTTPException as exc:
        if exc.status_code not in (409, 503):
            raise
        with store().transaction() as repo:
            process = repo.get_process(process_id)
        return page(request, "confirm.html", exc.status_code, process=process, action=action,
                    label=ACTIONS[action][0], what=ACTIONS[action][1], error=exc.detail)
    return _back(request, f"/processes/{process_id}?done={ {'resume': 'resumed', 'abort': 'aborted'}[action]}")


def _back(request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(request.scope.get("root_path", "") + UI + path, status_code=303)
