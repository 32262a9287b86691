"""scim2-client over httpx, each HTTP answer that is not a success raised as one of the OSS/BSS's errors."""

from typing import Any

import httpx
from scim2_client.client import BaseSyncSCIMClient

from usergroup.ossbss.errors import NotFoundError, PermanentError, TransientError


class ScimConflictError(PermanentError):
    """409: the SCIM server holds another resource with a value that must be unique (a group's displayName)."""


class ScimChangedError(TransientError):
    """412: the resource changed on the SCIM server between our read and our write; another try reads it again."""


def error_for(response: httpx.Response, what: str) -> Exception:
    """The OSS/BSS error a SCIM error answer means, with the server's `detail`."""
    status = response.status_code
    try:
        body = response.json()
        detail = body.get("detail") or body.get("scimType") or ""
    except ValueError:
        detail = response.text[:200]
    return error_status(status, f"SCIM server answered {status} to {what}" + (f": {detail}" if detail else ""))


def error_status(status: int, said: str) -> Exception:
    """5xx and 429 are transient (retried), 412 a changed resource (retried: it is read again), 404 not found, any
    other (400, 401, 403, 409...) permanent."""
    if status >= 500 or status == 429:
        return TransientError(said)
    if status == 412:
        return ScimChangedError(f"{said} (the resource changed since we read it)")
    if status == 404:
        return NotFoundError(said)
    if status == 409:
        return ScimConflictError(said)
    return PermanentError(said)


class HttpxScimClient(BaseSyncSCIMClient):
    """scim2-client's synchronous client on an `httpx.Client` (its base URL the SCIM root). A refused connection
    or a timeout is a `TransientError`; an error answer is raised by `error_for` before scim2-client reads it."""

    def __init__(self, client: httpx.Client, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client

    def _stays_under_base_url(self, endpoint: str) -> bool:
        base = self.client.base_url
        try:
            url = self.client.build_request("GET", endpoint).url
        except httpx.InvalidURL:
            return False
        return (url.scheme, url.netloc) == (base.scheme, base.netloc) and url.raw_path.startswith(base.raw_path)

    def _parse_json(self, response: Any) -> Any:
        return response.json()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        what = f"{method} {url}"
        try:
            response = self.client.request(method, url, **kwargs)
        except httpx.TransportError as exc:  # refused, reset, timed out: the OSS/BSS did not answer
            server = str(self.client.base_url).rstrip("/")
            raise TransientError(f"SCIM server {server} did not answer {what}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise error_for(response, what)
        return response
