"""Test helpers: where the checkout is, the PostgreSQL the tests may use, a store target, its fake OSS/BSS."""

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PG_URL_ENV = "USERGROUP_TEST_DATABASE_URL"
FAKE_OSSBSS_CONN = json.dumps({"conn_type": "usergroup_fake_ossbss"})  # the usergroup_ossbss connection: the fake


def pg_url() -> str | None:
    url = os.environ.get(PG_URL_ENV)
    if not url and os.environ.get("CI"):
        pytest.fail(f"{PG_URL_ENV} is not set: CI must run the PostgreSQL half of the store suite")
    return url


class StoreTarget:
    """One fresh store: its SQLAlchemy URL, its db_schema and the Airflow connection that reaches it."""

    def __init__(self, kind: str, url: str, db_schema: str):
        self.kind, self.url, self.db_schema = kind, url, db_schema

    @property
    def conn_json(self) -> str:
        from sqlalchemy.engine import make_url

        u = make_url(self.url)
        if self.kind == "sqlite":
            return json.dumps({"conn_type": "sqlite", "host": u.database})
        return json.dumps({"conn_type": "postgres", "host": u.host, "port": u.port, "login": u.username,
                           "password": u.password or "", "schema": u.database,
                           "extra": {"db_schema": self.db_schema}})

    def engine(self):
        from usergroup.store.connect import create_store_engine

        return create_store_engine(self.url, self.db_schema)


def oss_for(store):
    """The fake OSS/BSS beside a store (its own tables on PostgreSQL, its own file beside SQLite's)."""
    from usergroup.ossbss.fake import FakeOssBss
    from usergroup.store.connect import mapped_schema

    return FakeOssBss(store.engine.url, mapped_schema(store.engine) or "usergroup")


def dags_test(conf: str | None, dag_id: str = "create_user_group") -> subprocess.CompletedProcess:
    """`airflow dags test DAG_ID --conf CONF`, in the test session's Airflow home."""
    args = [sys.executable, "-m", "airflow", "dags", "test", dag_id]
    if conf is not None:
        args += ["--conf", conf]
    return subprocess.run(args, capture_output=True, text=True, env=os.environ.copy(), timeout=300)


CUSTOMER = "8f4b1a52-2c7e-4d1c-9a3e-0b6f5d2e7c10"
USER_GROUP = "6b3c3a1e-5d0f-4e43-9a2f-2f1e0a8b7c01"
USER_INTERNAL, USER_EXTERNAL = "3f1b7c52-8e4d-4a6b-9c21-5d7e0f3a9b11", "3f1b7c52-8e4d-4a6b-9c21-5d7e0f3a9b12"


def run_tasks(store, workflow, state: dict, upto: int | None = None, run_id: str = "r", oss=None, after: int = 0,
              answers: dict[str, dict] | None = None, **kw) -> dict:
    """The tasks of `workflow` after the first `after` and up to `upto` (all by default), as its DAG runs them,
    in this process."""
    from usergroup.airflow.tasks import run_step
    from usergroup.engine.input_step import InputStep
    from usergroup.engine.runner import TaskTry
    from usergroup.engine.suspend import answer, ask

    pairs = list(zip(workflow.steps, workflow.task_ids, strict=True))[:upto]
    for i, (s, task_id) in list(enumerate(pairs))[after:]:
        start = {"workflow_name": workflow.name, "workflow_target": str(workflow.target), "dag_id": workflow.name,
                 "run_id": run_id, "created_by": "test"} if i == 0 else None
        if isinstance(s, InputStep):  # asked, then answered at once (an approval, unless `answers` says else)
            task = TaskTry(step=s, task_id=task_id, workflow_target=str(workflow.target), try_number=1)
            oss = oss or oss_for(store)
            given = s.form.model_validate({**APPROVE, **(answers or {}).get(task_id, {})})
            state = ask(task, state, store=store, oss=oss) or answer(task, state, given, store=store, oss=oss)
            continue
        state = run_step(s, state, store=store, oss=oss or oss_for(store), try_number=1, task_id=task_id,
                         start=start, checks=workflow.checks if i == 0 else (), **kw)
    return state


APPROVE = {"decision": "Approve"}


def start_state(workflow, run_id: str, **fields) -> dict:
    """The initial state the first task of `workflow` builds for a run with these form fields."""
    from usergroup.engine.process_id import process_id_for

    return {"process_id": str(process_id_for(workflow.name, run_id)), "workflow_name": workflow.name,
            "workflow_target": str(workflow.target), "product_type": workflow.product_type,
            "product_id": fields.get("product", USER_GROUP if workflow.product_type == "UserGroup" else None),
            "customer_id": CUSTOMER, **fields}


def create(store, name: str, upto: int | None = None) -> dict:
    """Run create_user_group for `name` (its first `upto` tasks); the final state."""
    from uuid import uuid4

    from usergroup.workflows.user_group.create_user_group import create_user_group

    run_id = f"create-{uuid4()}"
    return run_tasks(store, create_user_group, start_state(create_user_group, run_id, group_name=name), upto,
                     run_id=run_id)


def create_user(store, group_id: str, username: str, upto: int | None = None, age: int | None = None,
                product: str = USER_INTERNAL) -> dict:
    """Run create_user for `username` in the group (its first `upto` tasks); the final state."""
    from uuid import uuid4

    from usergroup.workflows.user.create_user import create_user as workflow

    run_id = f"create-user-{uuid4()}"
    state = start_state(workflow, run_id, product=product, user_group_id=group_id, username=username, age=age)
    return run_tasks(store, workflow, state, upto, run_id=run_id)


def run_on(store, workflow, subscription_id: str, upto: int | None = None, run_id: str | None = None,
           **fields) -> dict:
    """Run a workflow on an existing subscription (its first `upto` tasks); the final state. The state's
    customer is a stranger's: the first task takes the subscription's own."""
    from uuid import uuid4

    run_id = run_id or f"{workflow.name}-{uuid4()}"
    state = start_state(workflow, run_id, subscription_id=subscription_id, **{"version": None, **fields})
    return run_tasks(store, workflow, {**state, "customer_id": str(uuid4())}, upto, run_id=run_id)


def counts(store) -> dict[str, int]:
    """Rows per table of the store: a refusal leaves them as they were."""
    from usergroup.store import tables

    with store.transaction() as repo:
        return {t.name: repo.count(t) for t in tables.metadata.sorted_tables}


def at_once(calls: list) -> tuple[list[dict], list[str]]:
    """Run the calls in threads released together: the final states of those that completed, and the messages
    of those refused (AirflowFailException)."""
    import threading

    from airflow.sdk.exceptions import AirflowFailException

    won, lost, barrier = [], [], threading.Barrier(len(calls))

    def attempt(call):
        barrier.wait()
        try:
            won.append(call())
        except AirflowFailException as exc:
            lost.append(str(exc))

    threads = [threading.Thread(target=attempt, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return won, lost


class Roles:
    """An auth manager's answer for in-process tests of the plugin's app: the admin may do anything, others read."""

    def is_authorized_dag(self, method, access_entity, details, user) -> bool:
        return method == "GET" or user.get_name() == "admin"


def app_client(name: str, monkeypatch):
    """The plugin's app in this process, logged in as `name` (Airflow's login and roles stand-ins: the live tests
    have the real ones), on the store of this test's `usergroup_default`."""
    from types import SimpleNamespace

    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.testclient import TestClient

    from usergroup.interfaces import deps
    from usergroup.interfaces.routes import create_app

    deps.store.cache_clear()
    monkeypatch.setattr(deps, "get_auth_manager", Roles)
    app = create_app()
    app.dependency_overrides[get_user] = lambda: SimpleNamespace(get_name=lambda: name)
    return TestClient(app, root_path="/orchestrator", cookies={"_token": f"token-of-{name}"})


@contextmanager
def approving(store, answer: dict | None = None, user: str = "ops"):
    """While in it, each process that waits for an answer gets `answer` (an approval by default), as an operator
    gives it through the operations every interface calls: for a run that asks, in `dag.test()`."""
    import threading

    from usergroup.interfaces.operations import AirflowRuns, OperationError, Operations

    ops, stop, errors = Operations(store, AirflowRuns()), threading.Event(), []

    def loop():
        while not stop.wait(0.2):
            with store.transaction() as repo:
                waiting = repo.list_processes(status="suspended")
            for p in waiting:
                try:
                    ops.resume(p["process_id"], pages=[answer or APPROVE], user=user)
                except OperationError as exc:  # not parked in Airflow yet: the next round answers
                    errors.append(exc.reason)
                except Exception as exc:  # noqa: BLE001 - the test shows it; the next round tries again
                    errors.append(repr(exc))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield errors
    finally:
        stop.set()
        thread.join(5)
