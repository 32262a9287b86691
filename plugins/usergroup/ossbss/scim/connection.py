"""The `usergroup_scim` connection's fields -> a ScimOssBss: where the SCIM endpoint is, how to authenticate, TLS."""

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, PositiveFloat, ValidationError

from usergroup.ossbss.scim.client import ScimOssBss


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


def scim_client(connection: Any) -> ScimOssBss:
    """host (a name, or a URL with its scheme), port, schema (the scheme when host has none, as Airflow's HTTP
    connections have it; https by default), login and password (basic auth) or password alone (a bearer token)."""
    name = f"the SCIM connection {connection.conn_id!r}"
    try:
        extra = ScimExtra.model_validate(connection.extra or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'extra'}: {e['msg']}" for e in exc.errors())
        raise ScimConnectionError(f"{name} has a bad extra: {problems}") from None
    if not connection.host:
        raise ScimConnectionError(f"{name} has no host: give the SCIM endpoint's host (or its URL)")
    host = connection.host if "://" in connection.host else f"{connection.schema or 'https'}://{connection.host}"
    url = httpx.URL(host)
    if connection.port:
        url = url.copy_with(port=connection.port)
    if extra.base_path:
        url = url.copy_with(path=url.path.rstrip("/") + "/" + extra.base_path.strip("/"))
    auth, headers = None, {}
    if connection.login:
        auth = (connection.login, connection.password or "")
    elif connection.password:
        headers["Authorization"] = f"Bearer {connection.password}"
    return ScimOssBss(str(url).rstrip("/"), auth=auth, headers=headers, verify=extra.verify, cert=extra.cert,
                      timeout=extra.timeout)
