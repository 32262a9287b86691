"""The OSS/BSS: the client interface the steps call (client.py), its errors (errors.py: transient ones are retried,
permanent ones are not), the fake (fake.py), and `CLIENTS`, the one place that maps the conn type of the
`usergroup_ossbss` Airflow connection to the client it names.

Conn types:
    usergroup_fake_ossbss   the fake (fake.py), which `make run`, `make up` and the compose deployment define:
                            `AIRFLOW_CONN_USERGROUP_OSSBSS='{"conn_type": "usergroup_fake_ossbss"}'`. It takes no
                            field of the connection: its tables sit beside the store's (in the store's schema on
                            PostgreSQL, in a file beside the store's on SQLite), migrated by `usergroup db upgrade`.
    usergroup_scim          a SCIM 2.0 endpoint (scim/): host (or URL), port, schema (its scheme, https by default),
                            login and password (basic auth) or password alone (a bearer token), and an extra of
                            base_path, verify, cert, timeout (scim/connection.py). `make up` defines one.
Another OSS/BSS is one more entry: a factory that builds its client from the connection's fields.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import URL

from usergroup.ossbss.client import OssBssClient


@dataclass(frozen=True)
class Connection:
    """What a client is given of its Airflow connection (Airflow's own class stays with the Airflow hook)."""

    conn_id: str
    conn_type: str
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StorePlace:
    """Where the store is, for a client that keeps tables beside it: its URL, its schema, and its engine (a client
    on the same database may share it: no second engine to set up in a task)."""

    url: URL
    db_schema: str
    engine: Engine | None = None


def _fake(connection: Connection, store: StorePlace) -> OssBssClient:
    from usergroup.ossbss.fake import FakeOssBss

    return FakeOssBss(store.url, store.db_schema, engine=store.engine)


def _scim(connection: Connection, store: StorePlace) -> OssBssClient:
    from usergroup.ossbss.deferred import Deferred
    from usergroup.ossbss.scim.connection import endpoint_of

    endpoint = endpoint_of(connection)  # a bad field is said here, before the task's step runs

    def build():
        from usergroup.ossbss.scim.client import ScimOssBss

        return ScimOssBss(endpoint.base_url, **endpoint.http)

    return Deferred(build)


CLIENTS: dict[str, Callable[[Connection, StorePlace], OssBssClient]] = {
    "usergroup_fake_ossbss": _fake,
    "usergroup_scim": _scim,
}
CONN_TYPES = tuple(CLIENTS)  # as they were declared: the first is the one `make run` and `make up` define


class UnknownClientError(LookupError):
    """The connection's conn type names no client."""


def client_for(connection: Connection, store: StorePlace) -> OssBssClient:
    """The client the connection's conn type names (it does no I/O until called)."""
    try:
        factory = CLIENTS[connection.conn_type]
    except KeyError:
        raise UnknownClientError(f"connection {connection.conn_id!r} has conn type {connection.conn_type!r}, which "
                                 f"names no OSS/BSS client: give it one of {', '.join(CLIENTS)}") from None
    return factory(connection, store)
