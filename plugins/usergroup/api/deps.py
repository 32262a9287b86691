"""What every route needs: the store, and Airflow's permissions (reads need DAG read access, acting on a workflow
the right to run its DAG)."""

from functools import cache
from typing import Annotated

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, HTTPException

from usergroup.store.repository import Store


def authorize(user, method: str, dag_id: str | None = None, entity: DagAccessEntity | None = None) -> None:
    allowed = get_auth_manager().is_authorized_dag(method=method, access_entity=entity,
                                                   details=DagDetails(id=dag_id), user=user)
    if not allowed:
        what = "read the DAGs" if method == "GET" else f"run {dag_id or 'workflows'}"
        raise HTTPException(403, f"forbidden: {user.get_name()} may not {what}")


User = Annotated[object, Depends(get_user)]


def reader(user: User):
    authorize(user, "GET")
    return user


Reader = Annotated[object, Depends(reader)]


def may_run(user, dag_id: str) -> None:
    authorize(user, "POST", dag_id, DagAccessEntity.RUN)


@cache
def store() -> Store:
    """The store behind the `usergroup_default` connection, one engine per api-server process."""
    from usergroup.hook import UserGroupHook

    return UserGroupHook().store
