"""What a task works with: the store and the OSS/BSS client, through their Airflow connections."""

from airflow.sdk.exceptions import AirflowFailException

from usergroup.airflow.hook import UserGroupHook
from usergroup.airflow.ossbss_hook import OssBssHook
from usergroup.ossbss.client import OssBssClient
from usergroup.store.repository import Store


def services(task_id: str) -> tuple[Store, OssBssClient]:
    """The store, through the `usergroup_default` connection, and the OSS/BSS client the `usergroup_ossbss`
    connection names."""
    hook = UserGroupHook()
    try:
        return hook.store, OssBssHook(store=hook).client
    except ValueError as exc:  # no store or OSS/BSS connection, or a bad one: no retry cures it
        raise AirflowFailException(f"{task_id}: {exc}") from None
