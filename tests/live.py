"""Live Airflow for tests: scripts/devstack.py's PostgreSQL stack with the REST calls the tests make, and a
PostgreSQL server of the test's own."""

import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from localpg import LocalPostgres
from sqlalchemy import inspect, text

from devstack import DAG_ID, PostgresStack
from helpers import FAKE_OSSBSS_CONN, StoreTarget, oss_for, pg_url
from usergroup.store.connect import mapped_schema
from usergroup.store.migrate import upgrade
from usergroup.store.repository import Store


class LiveAirflow(PostgresStack):
    def task_states(self, run_id: str, dag_id: str = DAG_ID) -> dict[str, str]:
        tis = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()
        return {ti["task_id"]: ti["state"] for ti in tis["task_instances"]}

    def dag_run_count(self, dag_id: str = DAG_ID) -> int:
        return self.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 1}).json()["total_entries"]

    def clear_failed(self, run_id: str, task_ids: list[str], dag_id: str = DAG_ID):
        return self.api("POST", f"/dags/{dag_id}/clearTaskInstances", json={
            "dag_run_id": run_id, "task_ids": task_ids, "dry_run": False, "only_failed": True,
            "reset_dag_runs": True, "include_downstream": True})

    def unfinished_runs(self) -> list[dict]:
        return self.api("GET", "/dags/~/dagRuns", params=[("state", "queued"), ("state", "running"),
                                                          ("limit", "100")]).json()["dag_runs"]

    def idle(self, timeout: float = 60) -> None:
        """Every run ended: waits for them, then marks failed what a test left unfinished (a run left to retry,
        a run meant to hang), so the next module starts on an idle stack."""
        deadline = time.monotonic() + timeout
        while (unfinished := self.unfinished_runs()) and time.monotonic() < deadline:
            time.sleep(0.5)
        for run in unfinished:
            self.api("PATCH", f"/dags/{run['dag_id']}/dagRuns/{run['dag_run_id']}", json={"state": "failed"})

    def restore(self, env: dict[str, str]) -> None:
        """The scheduler (whose task processes inherit its environment) back on `env` if a test changed it, and
        every component running."""
        if self.env != env:
            self.stop("scheduler")
            self.env = dict(env)
            self.start("scheduler")
        self.revive()


class OwnPostgres(LocalPostgres):
    """A PostgreSQL server of the test's own (scripts/localpg.py in a temporary folder, 127.0.0.1, a free port
    kept across restarts), so it can be stopped and started under a running workflow."""

    def __init__(self):
        folder = Path(tempfile.mkdtemp(prefix="usergroup-own-pg-"))
        folder.chmod(0o755)  # its server runs as the postgres user when the tests run as root
        super().__init__(folder)

    def init(self) -> "OwnPostgres":
        self.up("postgres")
        return self

    def start(self) -> None:
        self.up("postgres")

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def own_store(prefix: str) -> Iterator[tuple[StoreTarget, Store]]:
    """A migrated store (the fake OSS/BSS's tables beside it) in a schema of its own on the test PostgreSQL,
    dropped afterwards."""
    url = pg_url()
    if not url:
        pytest.skip("USERGROUP_TEST_DATABASE_URL not set")
    target = StoreTarget("postgres", url.replace("postgresql://", "postgresql+psycopg2://", 1),
                         f"{prefix}_{secrets.token_hex(4)}")
    engine = target.engine()
    upgrade(engine)
    oss_for(Store(engine)).upgrade()
    try:
        yield target, Store(engine)
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{target.db_schema}" CASCADE'))
        engine.dispose()


def empty(store: Store) -> None:
    """A store as after its migration: its products, nothing else (the fake OSS/BSS's records gone too)."""
    keep = {"products", "fixed_inputs", "alembic_version", "fake_ossbss_version"}
    schema = mapped_schema(store.engine)
    with store.engine.begin() as conn:
        names = [n for n in inspect(conn).get_table_names(schema) if n not in keep]
        conn.execute(text("TRUNCATE " + ", ".join(f'"{schema}"."{n}"' for n in names) + " CASCADE"))


@contextmanager
def oss_faults(store: Store, **switches) -> Iterator[None]:
    """The fake OSS/BSS's fault switches (`FakeOssBss.set_faults`) set for the block, then off: the stack's tasks
    see them at their next call, no restart."""
    oss = oss_for(store)
    oss.set_faults(**switches)
    try:
        yield
    finally:
        oss.set_faults(fail=False, delay=0, no_refuse=True)


def task_runner_pid(ti_id: str) -> int | None:
    """The task process: Airflow titles it "airflow worker -- <task instance id>"."""
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if f"airflow worker -- {ti_id}" in cmdline:
                return int(pid)
    return None


def running_task(live: LiveAirflow, run_id: str, task_id: str, dag_id: str, timeout: float = 180) -> int:
    """The pid of the task's process, once the task runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tis = live.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
        ti = next(t for t in tis if t["task_id"] == task_id)
        if ti["state"] == "running" and (pid := task_runner_pid(ti["id"])):
            return pid
        time.sleep(0.2)
    raise AssertionError(f"{task_id} of {run_id} never ran")


@contextmanager
def live_airflow(home: Path, target: StoreTarget, overrides: dict[str, str] | None = None) -> Iterator[LiveAirflow]:
    """A live stack on the test PostgreSQL whose store is `target`, stopped (its database dropped) afterwards."""
    airflow = LiveAirflow(home, pg_url(), {
        "AIRFLOW_CONN_USERGROUP_DEFAULT": target.conn_json,
        "AIRFLOW_CONN_USERGROUP_OSSBSS": FAKE_OSSBSS_CONN,
        "AIRFLOW__CORE__MAX_TASK_RETRY_DELAY": "1",  # the OSS/BSS steps' backoff (minutes) capped for the tests
        **(overrides or {}),
    })
    airflow.store_conn = target.conn_json
    try:
        yield airflow.start_stack()
    finally:
        airflow.stop_stack()


@contextmanager
def chromium():
    """A headless Chromium: Debian's (`make browser` installs it), else Playwright's own."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            yield browser
        finally:
            browser.close()


def logged_in(browser, airflow: LiveAirflow, user: str, viewport=(1400, 1000)):
    """A page of a browser context of its own, logged in to Airflow's UI as `user` (simple auth manager)."""
    password = json.loads((airflow.home / "passwords.json").read_text())[user]
    page = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}).new_page()
    page.goto(airflow.base + "/")
    page.locator("input[name=username]").fill(user)
    page.locator("input[type=password]").fill(password)
    page.locator("button[type=submit]").click()
    page.wait_for_url(airflow.base + "/")
    return page


class Client:
    """What an orchestrator-core client does, with Airflow's token: base URL + /api/..."""

    def __init__(self, live: LiveAirflow, user: str | None):
        self.base, self.headers = f"{live.base}/orchestrator", {}
        if user:
            password = json.loads((live.home / "passwords.json").read_text())[user]
            token = requests.post(f"{live.base}/auth/token", json={"username": user, "password": password},
                                  timeout=10).json()["access_token"]
            self.headers = {"Authorization": f"Bearer {token}"}

    def __call__(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, f"{self.base}/api{path}", headers=self.headers, timeout=30, **kw)

    def start(self, workflow: str, *pages: dict) -> str:
        response = self("POST", f"/processes/{workflow}", json=list(pages))
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def wait(self, process_id: str, until=("completed", "failed", "aborted"), timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            process = self("GET", f"/processes/{process_id}").json()
            if process["last_status"] in until or time.monotonic() > deadline:
                return process
            time.sleep(0.2)


def answer_waiting(live: LiveAirflow, store: Store, count: int = 1, answer: dict | None = None,
                   timeout: float = 120, runs: set[str] | None = None) -> list[str]:
    """Answer (approve, by default) the first `count` processes that wait (of the `runs` given: the stack is
    shared, an earlier test's process may wait too), over orchestrator-core's API as admin; their ids."""
    admin, answered, deadline = Client(live, "admin"), [], time.monotonic() + timeout
    while len(answered) < count:
        assert time.monotonic() < deadline, f"{len(answered)} of {count} processes came to wait"
        with store.transaction() as repo:
            waiting = [p["process_id"] for p in repo.list_processes(status="suspended")
                       if runs is None or p["run_id"] in runs]
        for pid in waiting:
            response = admin("PUT", f"/processes/{pid}/resume", json=[answer or {"decision": "Approve"}])
            if response.status_code == 204:
                answered.append(str(pid))
        time.sleep(0.3)
    return answered


def hitl_path(process: dict) -> str:
    """Airflow's REST path of the request a process waits on (at its last step)."""
    return (f"/dags/{process['dag_id']}/dagRuns/{quote(process['run_id'], safe='')}/taskInstances/"
            f"{process['last_step']}/-1/hitlDetails")


def parked(live: LiveAirflow, process: dict, timeout: float = 30) -> dict:
    """Airflow's request, once the process's task waits in awaiting_input."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = live.api("GET", hitl_path(process))
        if response.status_code == 200 and response.json()["task_instance"]["state"] == "awaiting_input":
            time.sleep(1.5)  # settled (usergroup.airflow.answers.SETTLE): Airflow 3.3.2 loses an answer given sooner
            return response.json()
        time.sleep(0.3)
    raise AssertionError(f"{process['last_step']} of {process['process_id']} never waited in awaiting_input")
