"""A real SCIM server for the tests (scripts/scim_server.py, in its own process group), and a reader of it that is
any SCIM client: plain HTTP, no code of ours."""

import sys

import httpx

from helpers import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from localpg import free_port  # noqa: E402

from scim_server import ScimServer  # noqa: E402


def scim_server(folder, *options: str) -> ScimServer:
    """A server on a free port, its journal and its log (a line per request) in `folder`."""
    return ScimServer(folder / "scim.jsonl", free_port(), folder / "scim.log", "--access-log", *options).start()


def read(server: ScimServer, kind: str, external_id=None) -> list[dict]:
    """What any SCIM client reading the server sees: the resources of a kind ("Groups", "Users"), of one
    externalId if given."""
    params, found = {"count": 1000, "startIndex": 1}, []
    if external_id is not None:
        params["filter"] = f'externalId eq "{external_id}"'
    while True:  # every page
        answer = httpx.get(f"{server.url}/{kind}", params=params, timeout=10)
        answer.raise_for_status()
        page = answer.json().get("Resources", [])
        found += page
        params["startIndex"] += len(page)
        if not page or len(found) >= answer.json()["totalResults"]:
            return found
