"""A real SCIM 2.0 server for `make up` and the tests: scim2-server's service, whose resources survive a restart.

scim2-server serves the protocol (RFC 7644: resources, PATCH, filters, ETags, Bulk, discovery) over its in-memory
storage; this adds a journal: every write is appended to a file (and flushed) before it is answered, and a server
started on the same file replays it. So a stop, a restart or a kill loses nothing the server answered; only the
operating system's crash could lose the last writes (the journal is not fsync'ed).

Served as the identity system the usergroup OSS/BSS client provisions: the `User` and `Group` resource types,
`User` with usergroup's extension (a user's age), and a Group's `displayName` unique on the server, as many
identity systems want it.

    python scripts/scim_server.py --port 8099 --journal scim.jsonl [--bearer-token T] [--no-bulk]
"""

import argparse
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from scim2_models import ResourceType, Schema, ScimProvider
from scim2_models.path import CompareOperator, Comparison, LogicalExpr, LogicalOperator
from scim2_server.memory import InMemoryStorage
from scim2_server.service import ScimService
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME, BearerTokenApplication
from scim2_server.utils import load_default_schemas, load_default_service_provider_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))
from usergroup.ossbss.scim.models import RESOURCES, UserGroupUser  # noqa: E402


def scim_provider(bulk: bool = True, bearer: bool = False, max_results: int | None = None) -> ScimProvider:
    schemas = load_default_schemas()
    group = schemas["urn:ietf:params:scim:schemas:core:2.0:Group"]
    for attribute in group.attributes:
        if attribute.name == "displayName":
            attribute.uniqueness = "server"
    config = load_default_service_provider_config()
    config.bulk.supported = bulk
    if max_results:
        config.filter.max_results = max_results
    if bearer:
        config.authentication_schemes = [*(config.authentication_schemes or []), BEARER_TOKEN_SCHEME]
    extension: Schema = UserGroupUser.to_schema()
    return ScimProvider.from_discovery([*schemas.values(), extension],
                                       [ResourceType.from_resource(model) for model in RESOURCES], config=config)


class JournalStorage(InMemoryStorage):
    """scim2-server's in-memory storage, each write appended to a journal that a new server replays."""

    def __init__(self, path: Path, provider: ScimProvider):
        super().__init__()
        self.path = path
        self._replay(provider)
        self._journal = path.open("a", encoding="utf-8")

    def _replay(self, provider: ScimProvider) -> None:
        kept: dict[tuple[str, str], dict] = {}
        lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.exists() else []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError as exc:
                if number < len(lines):
                    raise SystemExit(f"scim_server.py: {self.path} line {number} is not a journal entry ({exc}): "
                                     "repair or remove that line") from None
                # The last write, torn by a crash of the machine: left out, as a write never made (a client's
                # retry of it finds nothing by its externalId, and makes it again).
                print(f"scim_server.py: {self.path} ends in a torn write (line {number}), left out", flush=True)
                continue
            key = (entry["type"], entry["id"])
            if entry.get("resource") is None:
                kept.pop(key, None)
            else:
                kept[key] = entry
        self.resources = [provider.model_for(kind).model_validate(entry["resource"])
                          for (kind, _), entry in kept.items()]
        versions = [int(r.meta.version.strip('W/"')) for r in self.resources]
        self.versions = itertools.count(max(versions, default=0) + 1)
        compacted = self.path.with_name(self.path.name + ".tmp")  # the journal rewritten with what it keeps
        compacted.write_text("".join(json.dumps(entry) + "\n" for entry in kept.values()), encoding="utf-8")
        os.replace(compacted, self.path)

    def _candidates(self, names, scim_filter):
        """scim2-server walks every resource for a filter other than one `eq`; a disjunction of `eq`s on string
        attributes (how a client looks up a batch by externalId) walks only the resources each `eq` indexes."""
        node = getattr(scim_filter, "ast", None)
        if len(names) != 1 or not (isinstance(node, LogicalExpr) and node.op == LogicalOperator.or_):
            return super()._candidates(names, scim_filter)
        found: set[str] = set()
        for term in node.terms:
            if not (isinstance(term, Comparison) and term.op == CompareOperator.eq and isinstance(term.value, str)):
                return super()._candidates(names, scim_filter)
            binding = scim_filter.resolve_comparison(term.attr_path, strict=False)
            if binding is None or binding.is_multivalued or binding.target_type is not str:
                return super()._candidates(names, scim_filter)
            try:
                found |= self._equality_index(names[0], binding).get(binding.comparable(term.value), set())
            except ValueError:
                continue
        resources = self._resources.get(names[0], {})
        return [resources[resource_id] for resource_id in found]

    def _append(self, kind: str, resource_id: str, resource) -> None:
        dump = resource.model_dump(mode="json") if resource is not None else None
        self._journal.write(json.dumps({"type": kind, "id": resource_id, "resource": dump}) + "\n")
        self._journal.flush()

    def create(self, resource_type, resource):
        with self.lock:
            created = super().create(resource_type, resource)
            self._append(resource_type.name, created.id, created)
            return created

    def update(self, resource_type, resource, *, expected_version=None):
        with self.lock:
            updated = super().update(resource_type, resource, expected_version=expected_version)
            self._append(resource_type.name, updated.id, updated)
            return updated

    def delete(self, resource_type, resource_id, *, expected_version=None):
        with self.lock:
            super().delete(resource_type, resource_id, expected_version=expected_version)
            self._append(resource_type.name, resource_id, None)


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_request(self, code="-", size="-"):  # one line per request only when asked (--access-log)
        if self.server.access_log:
            super().log_request(code, size)


class ScimServer:
    """This server as a process of its own (its own process group), on 127.0.0.1: for `make up` and the tests."""

    def __init__(self, journal: Path, port: int, log: Path, *options: str):
        self.journal, self.port, self.log, self.options = journal, port, log, options
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2"

    def connection(self, **fields) -> str:
        """The usergroup_ossbss connection (Airflow's JSON form) to this server: host a URL, the extra's base_path."""
        return json.dumps({"conn_type": "usergroup_scim", "host": "http://127.0.0.1", "port": self.port,
                           "extra": {"base_path": "/v2"}, **fields})

    def start(self, timeout: float = 30) -> "ScimServer":
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, __file__, "--port", str(self.port), "--journal", str(self.journal), *self.options],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the SCIM server did not start on port {self.port}: "
                           f"{self.log.read_text(errors='replace')[-2000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, sig)
            self.process.wait(10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="scim_server.py", description=__doc__.splitlines()[0])
    parser.add_argument("--hostname", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--journal", type=Path, required=True, help="where the resources are kept")
    parser.add_argument("--bearer-token", action="append", default=[], help="accept only this token (repeatable)")
    parser.add_argument("--no-bulk", action="store_true", help="announce Bulk as not supported")
    parser.add_argument("--max-results", type=int, help="the most resources a page of a search holds (1000)")
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args(argv)

    provider = scim_provider(bulk=not args.no_bulk, bearer=bool(args.bearer_token), max_results=args.max_results)
    storage = JournalStorage(args.journal, provider)
    app = BearerTokenApplication(storage, provider, service=ScimService(provider, secret=os.urandom(32).hex()),
                                 bearer_tokens=args.bearer_token)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with make_server(args.hostname, args.port, app, server_class=ThreadingWSGIServer,
                     handler_class=QuietHandler) as server:
        server.access_log = args.access_log
        print(f"Serving SCIM on http://{args.hostname}:{args.port}/v2 ({len(storage.resources)} resources from "
              f"{args.journal})", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
