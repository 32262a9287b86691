"""/api/subscriptions: a subscription's domain model, the workflows it may run, set in sync, search."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from usergroup.interfaces.contract import CONTENT_RANGE, RANGE, answers, shaped
from usergroup.interfaces.deps import Reader, User, may_set_in_sync, operations, page_range, store, subscription_or_404
from usergroup.interfaces.views import domain_model

router = APIRouter()
SORTABLE = ("description", "status", "insync", "start_date", "end_date", "customer_id", "subscription_id")
SORT = f"^(?:{'|'.join(SORTABLE)})(?:,(?:asc|desc))?$"
NO_SUBSCRIPTION = {404: "No subscription with this id"}


@router.get("/domain-model/{subscription_id}", responses=answers(NO_SUBSCRIPTION))
def get_domain_model(subscription_id: UUID, user: Reader) -> dict:
    with store().transaction() as repo:
        return domain_model(subscription_or_404(repo, subscription_id))


@router.get("/workflows/{subscription_id}", responses=answers(NO_SUBSCRIPTION))
def get_workflows(subscription_id: UUID, user: Reader) -> dict:
    return operations().workflows_for(subscription_id)


@router.put("/{subscription_id}/set_in_sync", responses=answers({
    **NO_SUBSCRIPTION, 409: "A process holds the subscription"}))
def set_in_sync(subscription_id: UUID, user: User) -> Response:
    """The operator's recovery, with the CLI's guard: refused (409) while a process holds the subscription."""
    may_set_in_sync(user)
    operations().set_in_sync(subscription_id)
    return Response(status_code=200)


@router.get("/search", responses={**answers({400: "A `sort` or `range` not of its shape"}),
                                  200: {"headers": CONTENT_RANGE}})
def search(
    user: Reader, response: Response, query: str = "",
    range: Annotated[str | None, Query(json_schema_extra={"pattern": RANGE})] = None,
    sort: Annotated[str | None, Query(json_schema_extra={"pattern": SORT})] = None,
) -> list[dict]:
    """Subscriptions whose description, product, status, id or customer contain every word of `query` (case
    ignored); `range=start,end`, `sort=field` or `sort=field,asc|desc`."""
    field, _, order = (shaped(sort, SORT, "sort", f"a field of {', '.join(SORTABLE)}, then asc or desc")
                       or "start_date,desc").partition(",")
    start, end = page_range(range)
    with store().transaction() as repo:
        found, total = repo.page_subscriptions(query=query, sort=field, descending=order == "desc", offset=start,
                                               limit=None if end is None else end - start)
    response.headers["Content-Range"] = f"subscriptions {start}-{start + len(found)}/{total}"
    return [domain_model(s) for s in found]
