"""/api/subscriptions: a subscription's domain model, the workflows it may run, set in sync, search."""

from uuid import UUID

from fastapi import APIRouter, HTTPException, Response

from usergroup.interfaces.deps import Reader, User, may_set_in_sync, operations, page_range, store, subscription_or_404
from usergroup.interfaces.views import domain_model

router = APIRouter()
SORTABLE = ("description", "status", "insync", "start_date", "end_date", "customer_id", "subscription_id")


@router.get("/domain-model/{subscription_id}")
def get_domain_model(subscription_id: UUID, user: Reader) -> dict:
    with store().transaction() as repo:
        return domain_model(subscription_or_404(repo, subscription_id))


@router.get("/workflows/{subscription_id}")
def get_workflows(subscription_id: UUID, user: Reader) -> dict:
    return operations().workflows_for(subscription_id)


@router.put("/{subscription_id}/set_in_sync")
def set_in_sync(subscription_id: UUID, user: User) -> Response:
    """The operator's recovery, with the CLI's guard: refused (409) while a process holds the subscription."""
    may_set_in_sync(user)
    operations().set_in_sync(subscription_id)
    return Response(status_code=200)


@router.get("/search")
def search(user: Reader, response: Response, query: str = "", range: str | None = None,
           sort: str | None = None) -> list[dict]:
    """Subscriptions whose description, product, status, id or customer contain every word of `query` (case
    ignored); `range=start,end`, `sort=field,asc|desc`."""
    parts = sort.split(",") if sort else ["start_date", "desc"]
    field, order = parts[0], parts[1] if len(parts) > 1 else "asc"
    if len(parts) > 2 or field not in SORTABLE or order not in ("asc", "desc"):
        raise HTTPException(400, f"sort {sort!r}: a field of {', '.join(SORTABLE)}, then asc or desc")
    start, end = page_range(range)
    with store().transaction() as repo:
        found, total = repo.page_subscriptions(query=query, sort=field, descending=order == "desc", offset=start,
                                               limit=None if end is None else end - start)
    response.headers["Content-Range"] = f"subscriptions {start}-{start + len(found)}/{total}"
    return [domain_model(s) for s in found]

