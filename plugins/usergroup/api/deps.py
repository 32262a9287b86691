"""What the routes share: the store, paging, and Airflow's permissions (reads need DAG read access, acting on a workflow
the right to run its DAG)."""

from functools import cache
from typing import Annotated

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, HTTPException

from usergroup.store.repository import Store


def authorize(user, method: str, dag_id: str | None = None, entity: DagAccessEntity | None = None,
              what: str = "") -> None:
    allowed = get_auth_manager().is_authorized_dag(method=method, access_entity=entity,
                                                   details=DagDetails(id=dag_id), user=user)
    if not allowed:
        what = what or ("read the DAGs" if method == "GET" else f"run {dag_id or 'workflows'}")
        raise HTTPException(403, f"forbidden: {user.get_name()} may not {what}")


User = Annotated[object, Depends(get_user)]


def reader(user: User):
    authorize(user, "GET")
    return user


Reader = Annotated[object, Depends(reader)]


def may_run(user, dag_id: str) -> None:
    authorize(user, "POST", dag_id, DagAccessEntity.RUN)


def may_set_in_sync(user) -> None:
    authorize(user, "PUT", None, DagAccessEntity.RUN, "set subscriptions in sync")


@cache
def store() -> Store:
    """The store behind the `usergroup_default` connection, one engine per api-server process."""
    from usergroup.hook import UserGroupHook

    return UserGroupHook().store


MAX_ROW = 2**31 - 1


def page_range(value: str | None, total: int | None) -> tuple[int, int | None]:
    """orchestrator-core's `range=start,end` (end exclusive, within `total` if known); all by default."""
    if not value:
        return 0, total
    try:
        start, end = map(int, value.split(","))
    except ValueError:
        raise HTTPException(400, f"range {value!r}: give start,end") from None
    if not 0 <= start <= end <= MAX_ROW:
        raise HTTPException(400, f"range {value!r}: 0 <= start <= end <= {MAX_ROW}")
    return (start, end) if total is None else (min(start, total), min(end, total))
