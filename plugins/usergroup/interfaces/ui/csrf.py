"""Forged requests refused: a page's forms carry a token derived from the login's token, and a browser request that
changes state must come from our own origin."""

import hashlib
import hmac
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def login_token(request: Request) -> str:
    """The token the request logged in with: the UI's cookie, or the client's Bearer token."""
    bearer = request.headers.get("authorization", "")
    return bearer.removeprefix("Bearer ").strip() if bearer.startswith("Bearer ") else request.cookies.get("_token", "")


def csrf_token(request: Request) -> str:
    """Only a page served to this login can carry it (another site can neither read our pages nor the cookie)."""
    return hmac.new(login_token(request).encode(), b"usergroup-ui-form", hashlib.sha256).hexdigest()


def check_csrf(request: Request, given: str | None) -> None:
    if not given or not hmac.compare_digest(given, csrf_token(request)):
        raise HTTPException(403, "this form is stale or was not sent from this page (its token does not match your "
                                 "login): reload the page and try again")


class SameOrigin:
    """Refuse a state change a browser sends with the UI's login cookie from another origin (another port of this
    host is another origin, though the same site, so SameSite=Lax would send it the cookie). Clients with a Bearer
    token are not browsers acting for someone else, and a request without the cookie acts for no one: they pass
    (to the login check)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            by_cookie = "_token" in cookie_parser(headers.get("cookie", ""))
            if by_cookie and not headers.get("authorization", "").startswith("Bearer ") and not _same_origin(headers):
                from starlette.responses import PlainTextResponse

                refused = PlainTextResponse("forbidden: a state change from another origin (or one that does not say "
                                            "where it comes from) is refused", status_code=403)
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _same_origin(headers: dict[str, str]) -> bool:
    origin = headers.get("origin")
    if origin is None:  # browsers send Origin with every POST and PUT; a fetch metadata header is the fallback
        return headers.get("sec-fetch-site") == "same-origin"
    return origin != "null" and urlsplit(origin).netloc in (headers.get("host"), headers.get("x-forwarded-host"))
