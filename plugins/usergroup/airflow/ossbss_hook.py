"""OssBssHook: the `usergroup_ossbss` Airflow connection -> the OSS/BSS client its conn type names."""

from functools import cached_property

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from usergroup.airflow.hook import UserGroupHook
from usergroup.ossbss import CLIENTS, CONN_TYPES, Connection, StorePlace, client_for
from usergroup.ossbss.client import OssBssClient


class OssBssConnectionError(ValueError):
    """The OSS/BSS's connection is missing or names no client: no retry cures that."""


class OssBssHook(BaseHook):
    """The OSS/BSS client, chosen by an Airflow connection, and only by it.

    The connection's conn type names the client (`usergroup.ossbss.CLIENTS`); its other fields are the client's.
    A client that keeps tables beside the store is given the store's URL, schema and engine (from `store`, the
    store's hook, by default one of its own on `usergroup_default`). A missing connection or a conn type that
    names no client is an error: the OSS/BSS is never chosen silently.
    """

    conn_name_attr = "ossbss_conn_id"
    default_conn_name = "usergroup_ossbss"
    conn_type = CONN_TYPES[0]  # one of usergroup.ossbss.CONN_TYPES: the conn type names the client
    hook_name = "User Group OSS/BSS"

    def __init__(self, ossbss_conn_id: str = default_conn_name, store: UserGroupHook | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.ossbss_conn_id = ossbss_conn_id
        self._store = store

    @cached_property
    def store_hook(self) -> UserGroupHook:
        return self._store or UserGroupHook()

    @cached_property
    def connection(self) -> Connection:
        try:
            conn = self.get_connection(self.ossbss_conn_id)
        except AirflowNotFoundException:
            env = f"AIRFLOW_CONN_{self.ossbss_conn_id.upper()}"
            raise OssBssConnectionError(
                f"the Airflow connection {self.ossbss_conn_id!r} is not defined: its conn type names the OSS/BSS "
                f"client the usergroup tasks call ({', '.join(CLIENTS)}). Define it on every machine that runs "
                f"usergroup tasks ({env}, the UI, or a secrets backend), e.g. "
                f"{env}='{{\"conn_type\": \"{CONN_TYPES[0]}\"}}'") from None
        return Connection(conn_id=self.ossbss_conn_id, conn_type=conn.conn_type, host=conn.host, port=conn.port,
                          login=conn.login, password=conn.password, schema=conn.schema, extra=conn.extra_dejson)

    @cached_property
    def client(self) -> OssBssClient:
        """The client, built without I/O (it connects when called)."""
        connection = self.connection
        if connection.conn_type not in CLIENTS:  # said before the store's connection is read
            raise OssBssConnectionError(f"the Airflow connection {connection.conn_id!r} has conn type "
                                        f"{connection.conn_type!r}, which names no OSS/BSS client: give it one of "
                                        f"{', '.join(CLIENTS)}")
        url, db_schema = self.store_hook.url_and_schema
        return client_for(connection, StorePlace(url, db_schema, self.store_hook.engine))

    def get_conn(self) -> OssBssClient:
        return self.client

