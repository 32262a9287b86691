"""The API's contract: its OpenAPI and Swagger UI behind the login, `Allow` true to each path, the shapes of `range`,
`sort` and `filter` held to, and a property-based run generated from the app's own OpenAPI (schemathesis) against
the app in-process on a real store, with every check on."""

from types import SimpleNamespace
from uuid import uuid4

import pytest
import schemathesis
from fastapi import HTTPException, Request
from fastapi.testclient import TestClient
from schemathesis.engine import events, from_schema

from helpers import Roles, create, create_user
from usergroup.interfaces import deps
from usergroup.interfaces.routes import create_app

TOKEN = "token-of-admin"
LOGIN = {"Authorization": f"Bearer {TOKEN}"}
OPERATIONS = {
    "GET /api/products/", "GET /api/products/{product_id}", "GET /api/processes/", "GET /api/processes/{process_id}",
    "POST /api/processes/{workflow_key}", "PUT /api/processes/{process_id}/resume",
    "PUT /api/processes/{process_id}/abort", "GET /api/subscriptions/domain-model/{subscription_id}",
    "GET /api/subscriptions/workflows/{subscription_id}", "PUT /api/subscriptions/{subscription_id}/set_in_sync",
    "GET /api/subscriptions/search"}


def logged_in(request: Request):
    """Airflow's login as the contract declares it: a Bearer token, else 401 (the live tests have the real one)."""
    if request.headers.get("authorization") != f"Bearer {TOKEN}":
        raise HTTPException(401, "Not authenticated")
    return SimpleNamespace(get_name=lambda: "admin")


@pytest.fixture
def app(store, monkeypatch):
    from airflow.api_fastapi.core_api.security import get_user

    deps.store.cache_clear()
    monkeypatch.setattr(deps, "get_auth_manager", Roles)
    app = create_app()
    app.dependency_overrides[get_user] = logged_in
    lab = create(store, "Contract Lab")["subscription"]["subscription_id"]
    create_user(store, lab, "bob")
    yield app
    deps.store.cache_clear()


@pytest.fixture
def client(app):
    return TestClient(app, root_path="/orchestrator")


def test_the_openapi_and_swagger_ui_are_served_behind_the_login(client):
    for path in ("/api/openapi.json", "/api/docs", "/api/docs/swagger-ui-bundle.js"):
        refused = client.get(path)
        assert refused.status_code == 401 and refused.json() == {"detail": "Not authenticated", "status": 401}
    schema = client.get("/api/openapi.json", headers=LOGIN).json()
    assert schema["servers"] == [{"url": "/orchestrator"}]
    assert {f"{m.upper()} {p}" for p, ops in schema["paths"].items() for m in ops} == OPERATIONS  # no /ui pages
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert {"401", "403"} <= set(operation["responses"]), f"{method} {path}"
    docs = client.get("/api/docs", headers=LOGIN)
    assert docs.status_code == 200 and "/orchestrator/api/openapi.json" in docs.text
    assert "/orchestrator/api/docs/swagger-ui-bundle.js" in docs.text and "cdn." not in docs.text
    bundle = client.get("/api/docs/swagger-ui-bundle.js", headers=LOGIN)
    assert bundle.status_code == 200 and "javascript" in bundle.headers["content-type"]
    assert client.get("/api/docs/..%2F..%2Fcore.py", headers=LOGIN).status_code == 404


def test_allow_names_what_a_path_serves(client):
    """A process's path serves GET, a workflow's POST (both are /api/processes/{...}): a 405 says which."""
    process, workflow = f"/api/processes/{uuid4()}", "/api/processes/create_user_group"
    for method, path, allow in (("OPTIONS", process, "GET"), ("PUT", process, "GET"), ("POST", process, "GET"),
                                ("OPTIONS", workflow, "POST"), ("GET", workflow, "POST"),
                                ("DELETE", "/api/processes/", "GET")):
        answer = client.request(method, path, headers=LOGIN)
        assert (answer.status_code, answer.headers.get("allow")) == (405, allow), (method, path)
    page = client.request("DELETE", "/ui/subscriptions", headers=LOGIN)  # a page's 405 keeps its Allow too
    assert (page.status_code, page.headers.get("allow")) == (405, "GET")
    assert client.post("/api/processes/no_such_workflow", headers=LOGIN, json=[]).status_code == 404


def test_range_sort_and_filter_take_what_their_patterns_allow(client):
    def listed(**params):
        answer = client.get("/api/processes/", params=params, headers=LOGIN)
        return answer.status_code, answer.headers.get("content-range"), answer.json()

    assert listed(range="5,3")[:2] == (200, "processes 5-5/2")  # an end before its start: an empty page
    assert listed(filter="lastStatus,completed,lastStatus,failed")[1:] == ("processes 0-0/0", [])  # both must hold
    assert listed(filter="lastStatus,completed,last_status,completed")[1] == "processes 0-2/2"
    newest_first = listed(sort="startedAt,desc,startedAt,asc")[2]  # a field's first order counts
    assert [p["workflow_name"] for p in newest_first] == ["create_user", "create_user_group"]
    for bad in ({"range": ""}, {"range": "0,1000000000"}, {"range": "٣,4"}, {"filter": "lastStatus"},
                {"filter": "status,completed"}, {"sort": "startedAt"}, {"sort": ""}):
        status, _, body = listed(**bad)
        assert status == 400 and body["status"] == 400 and next(iter(bad)) in body["detail"], bad
    search = client.get("/api/subscriptions/search", params={"sort": "description"}, headers=LOGIN)
    assert search.status_code == 200 and search.headers["content-range"] == "subscriptions 0-2/2"
    assert client.get("/api/subscriptions/search", params={"sort": "description,up"},
                      headers=LOGIN).status_code == 400


def test_every_operation_keeps_its_contract(app):
    """Generated from the app's own OpenAPI, deterministic (fixed seed), bounded (examples per operation): no
    server error, no status it does not declare, no answer that breaks its schema, a schema-valid request accepted
    and a schema-violating one refused, `Allow` and 405 for what a path does not serve, 401 without the login."""
    config = schemathesis.Config.from_dict({
        "seed": 1, "headers": LOGIN, "generation": {"max-examples": 20, "deterministic": True},
        # A form's pages are the workflow's form (to resume: the waiting step's), given a page at a time as
        # orchestrator-core does, the next page's form answered with 510 (its protocol's "not complete", not a
        # server error); its rules (a free name, an existing group) are beyond a JSON schema: 400 names the field.
        "operations": [{"include-path": path, "include-method": method, "checks": {
            "positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "403", "404", "409", "510"]},
            "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "510"]}}}
            for path, method in (("/api/processes/{workflow_key}", "POST"),
                                 ("/api/processes/{process_id}/resume", "PUT"))],
    })
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app, config=config, headers=LOGIN)
    failures, requests, operations, statuses = [], 0, set(), set()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            operations.add(event.recorder.label)  # an operation, or "Stateful tests" (sequences of them)
            requests += len(event.recorder.interactions)
            statuses |= {i.response.status_code for i in event.recorder.interactions.values() if i.response}
            failures += [f"{event.recorder.label}: {check.name}: {check.failure_info.failure.title}: "
                         f"{check.failure_info.failure.message}\n  {check.failure_info.steps[-1].curl}"
                         for checks in event.recorder.checks.values() for check in checks if check.failure_info]
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures.append(f"{type(event).__name__}: {event}")
    print(f"contract: {requests} requests generated over {len(operations)} operations, statuses {sorted(statuses)}")
    assert operations - {"Stateful tests"} == OPERATIONS
    assert {200, 400, 401, 404, 405, 409, 510} <= statuses  # it reached every kind of answer
    assert not failures, "\n".join(sorted(set(failures)))
