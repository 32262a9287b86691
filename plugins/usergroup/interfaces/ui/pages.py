"""The pages: the subscriptions (filtered, searched, paged in SQL), a subscription, a process, a DAG run's processes
(the Process tab)."""

import re
from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from usergroup.domain import ProcessStatus, SubscriptionLifecycle, SubscriptionModel
from usergroup.engine.discovery import all_workflows, declared, subscription_workflows
from usergroup.interfaces.deps import Reader, may_run, may_set_in_sync, process_or_404, store, subscription_or_404
from usergroup.interfaces.ui import workflow_form as forms
from usergroup.interfaces.ui.html import page
from usergroup.interfaces.views import process_json

router = APIRouter()
PAGE_SIZE = 25
RUN_PAGE = 50  # processes the Process tab of a run shows
DONE = {"started": "The workflow was started: its process is below.", "resumed": "The process was resumed.",
        "answered": "Your answer was given: the process goes on with it.",
        "aborted": "The process was aborted.", "in_sync": "The subscription is in sync again."}


@router.get("/subscriptions", response_class=HTMLResponse)
def subscriptions_page(request: Request, user: Reader, query: str = "", product: str = "", status: str = "",
                       insync: str = "", page_number: str = "1") -> HTMLResponse:
    with store().transaction() as repo:
        products = sorted(repo.products().values(), key=lambda p: p.name)
        chosen = next((p for p in products if str(p.product_id) == product), None)
        number = int(page_number) if re.fullmatch(r"0*[1-9][0-9]{0,8}", page_number) else 1
        filters = {"query": query, "product_id": chosen.product_id if chosen else None,
                   "status": status if status in set(SubscriptionLifecycle) else None,
                   "insync": {"yes": True, "no": False}.get(insync)}
        found, total = repo.page_subscriptions(**filters, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE)
        if not found and total:  # past the last page: the last page
            number = -(-total // PAGE_SIZE)
            found, total = repo.page_subscriptions(**filters, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE)
        failed = repo.with_failed_process([s.subscription_id for s in found])
    return page(request, "subscriptions.html", subscriptions=found, failed=failed, total=total, number=number,
                pages=max(1, -(-total // PAGE_SIZE)), size=PAGE_SIZE, products=products,
                statuses=list(SubscriptionLifecycle),
                filters={"query": query, "product": product, "status": status, "insync": insync})


@router.get("/subscriptions/{subscription_id}", response_class=HTMLResponse)
def subscription_page(request: Request, subscription_id: UUID, user: Reader, done: str = "") -> HTMLResponse:
    return subscription_view(request, subscription_id, user, notice=DONE.get(done, ""))


def subscription_view(request: Request, subscription_id: UUID, user, status_code: int = 200, notice: str = "",
                      error: str = "", errors: dict[str, Any] | None = None,
                      posted: dict | None = None) -> HTMLResponse:
    """The subscription's page; after a refused action, with why (`error`, or per workflow its form's `errors`) and
    what was posted."""
    with store().transaction() as repo:
        sub = subscription_or_404(repo, subscription_id)
        processes = [process_json(repo, p) for p in reversed(repo.processes_of(subscription_id))]
        used_by = repo.used_by(subscription_id)
        allowed = subscription_workflows(repo, sub)
    workflows = [w for target in ("modify", "terminate", "validate", "system") for w in allowed[target]]
    for w in workflows:
        w["fields"] = forms.fields(all_workflows()[w["name"]], sub) if "reason" not in w else []
    creates = [{"name": w.name, "description": w.title, "fields": forms.fields(w, sub)}
               for w in forms.creates_for(sub)]
    for w in workflows + creates:
        w["may_run"] = _may(lambda: may_run(user, w["name"]))  # noqa: B023 (called at once)
    return page(request, "subscription.html", status_code, sub=sub, blocks=_blocks(sub), used_by=used_by,
                processes=processes, workflows=workflows, creates=creates, notice=notice, error=error,
                errors=errors or {}, posted=posted or {}, may_set_in_sync=_may(lambda: may_set_in_sync(user)))


@router.get("/processes/{process_id}", response_class=HTMLResponse)
def process_page(request: Request, process_id: UUID, user: Reader, done: str = "") -> HTMLResponse:
    return process_view(request, process_id, user, notice=DONE.get(done, ""))


def process_view(request: Request, process_id: UUID, user, status_code: int = 200, notice: str = "", error: str = "",
                 posted: dict | None = None) -> HTMLResponse:
    """The process's page; after a refused answer, with why and what was posted."""
    with store().transaction() as repo:
        view = process_json(repo, process_or_404(repo, process_id))
    return page(request, "process.html", status_code, processes=[view], actions=_actions(user, [view]),
                notice=notice, error=error, posted=posted or {}, title=f"Process {process_id}")


@router.get("/runs/{dag_id}/{run_id:path}", response_class=HTMLResponse)
def run_page(request: Request, dag_id: str, run_id: str, user: Reader) -> HTMLResponse:
    """The Process tab of a DAG run: its processes (one; a run for many subscriptions or names has one each, of
    which the first RUN_PAGE are shown, those that did not complete first)."""
    with store().transaction() as repo:
        total = repo.count_processes(dag_id=dag_id, run_id=run_id)
        shown = [p for status in ("failed", "suspended", "running", "created", "aborted", "completed")
                 for p in repo.list_processes(dag_id=dag_id, run_id=run_id, status=status, limit=RUN_PAGE)][:RUN_PAGE]
        views = [process_json(repo, p) for p in shown]
    return page(request, "process.html", processes=views, actions=_actions(user, views), notice="", total=total,
                title=f"{dag_id} / {run_id}", ours=dag_id in declared(), tab=True)


def _actions(user, views: list[dict]) -> dict[str, list[str]]:
    """Per process what this user may do with it now."""
    out = {}
    for v in views:
        may = _may(lambda: may_run(user, v["dag_id"]))  # noqa: B023
        status = v["last_status"]
        out[v["process_id"]] = [a for a, ok in (("resume", status == ProcessStatus.FAILED),
                                                 ("answer", status == ProcessStatus.SUSPENDED),
                                                 ("abort", status in ("created", "running", "suspended", "failed",
                                                                      "waiting")))
                                if ok and may]
    return out


def _blocks(sub: SubscriptionModel) -> list[tuple[str, list[tuple[str, Any, UUID | None]]]]:
    """Each product block as (its key, its fields); a field that is another subscription's block links to it."""
    out = []
    for key, block in sub.product_fields().items():
        if not hasattr(block, "model_dump"):
            out.append(("", [(key, block, None)]))
            continue
        rows = []
        for name, value in block:
            owner = getattr(value, "owner_subscription_id", None)
            if owner is not None:
                rows += [(f"{name}.{k}", v, owner) for k, v in value if k != "owner_subscription_id"]
            elif name != "owner_subscription_id":
                rows.append((name, value, None))
        out.append((key, rows))
    return out


def _may(check) -> bool:
    try:
        check()
    except HTTPException:
        return False
    return True
