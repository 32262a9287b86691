"""What the routes share: the store, paging, a subscription or process or 404, and Airflow's permissions
(reads need DAG read access, acting on a workflow the right to run its DAG)."""

from functools import cache
from typing import Annotated, Any
from uuid import UUID

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, HTTPException

from usergroup.domain import SubscriptionModel
from usergroup.interfaces.contract import RANGE, shaped
from usergroup.store.repository import Repository, Store


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
    from usergroup.airflow.hook import UserGroupHook

    return UserGroupHook().store


def runs():
    """How the operations reach Airflow (tests replace it)."""
    from usergroup.interfaces.operations import AirflowRuns

    return AirflowRuns()


def operations():
    """The operations layer over this process's store and Airflow."""
    from usergroup.interfaces.operations import Operations

    return Operations(store(), runs())


def page_range(value: str | None) -> tuple[int, int | None]:
    """orchestrator-core's `range=start,end` (end exclusive; an end before its start is an empty page); all (end
    None) by default."""
    if value is None:
        return 0, None
    start, end = map(int, shaped(value, RANGE, "range", "give start,end (each at most 9 digits)").split(","))
    return start, max(start, end)


def subscription_or_404(repo: Repository, subscription_id: UUID) -> SubscriptionModel:
    if (sub := repo.get_subscription(subscription_id)) is None:
        raise HTTPException(404, f"no subscription {subscription_id}")
    return sub


def process_or_404(repo: Repository, process_id: UUID, lock: bool = False) -> dict[str, Any]:
    if (process := repo.get_process(process_id, lock=lock)) is None:
        raise HTTPException(404, f"no process {process_id}")
    return process
