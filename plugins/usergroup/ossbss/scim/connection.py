"""The `usergroup_scim` connection's fields -> where the SCIM endpoint is, how to authenticate, TLS (no SCIM library
imported: a task whose step never calls the OSS/BSS does not pay for one)."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, PositiveFloat, ValidationError


class ScimExtra(BaseModel):
    """The connection's extra: `base_path` the SCIM root's path (e.g. "/scim/v2"), `verify` whether to check the
    server's TLS certificate (or the CA bundle to check it with), `cert` a client certificate (file, or [file, key]),
    `timeout` seconds per request."""

    model_config = ConfigDict(extra="forbid")

    base_path: str = ""
    verify: bool | str = True
    cert: str | tuple[str, str] | None = None
    timeout: PositiveFloat = 10.0


class ScimConnectionError(ValueError):
    """The connection does not say where or how to reach a SCIM endpoint."""


@dataclass(frozen=True)
class ScimEndpoint:
    """The SCIM root's URL, and the keyword arguments of the httpx client that reaches it."""

    base_url: str
    http: dict[str, Any] = field(repr=False)


def endpoint_of(connection: Any) -> ScimEndpoint:
    """host (a name, or a URL with its scheme), port, schema (the scheme when host has none, as Airflow's HTTP
    connections have it; https by default), login and password (basic auth) or password alone (a bearer token)."""
    name = f"the SCIM connection {connection.conn_id!r}"
    try:
        extra = ScimExtra.model_validate(connection.extra or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'extra'}: {e['msg']}" for e in exc.errors())
        raise ScimConnectionError(f"{name} has a bad extra: {problems}") from None
    files = {"extra.verify": [extra.verify] if isinstance(extra.verify, str) else [],
             "extra.cert": [extra.cert] if isinstance(extra.cert, str) else list(extra.cert or ())}
    for name_of, paths in files.items():  # read on the machine that runs the task: said before the step runs
        for path in paths:
            if not Path(path).is_file():
                raise ScimConnectionError(f"{name} has a bad {name_of}: no such file {path!r} on this machine")
    if not connection.host:
        raise ScimConnectionError(f"{name} has no host: give the SCIM endpoint's host (or its URL)")
    host = connection.host if "://" in connection.host else f"{connection.schema or 'https'}://{connection.host}"
    try:
        url = urlsplit(host)
        netloc = f"{url.hostname}:{connection.port or url.port}" if connection.port or url.port else url.hostname
    except ValueError as exc:
        raise ScimConnectionError(f"{name} has a bad host {connection.host!r}: {exc}") from None
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ScimConnectionError(f"{name} has a bad host {connection.host!r}: give a name or an http(s) URL")
    path = "/".join(p.strip("/") for p in (url.path, extra.base_path) if p.strip("/"))
    http: dict[str, Any] = {"verify": extra.verify, "cert": extra.cert, "timeout": extra.timeout, "headers": {}}
    if connection.login:
        http["auth"] = (connection.login, connection.password or "")
    elif connection.password:
        http["headers"]["Authorization"] = f"Bearer {connection.password}"
    return ScimEndpoint(urlunsplit((url.scheme, netloc, f"/{path}" if path else "", "", "")), http)
