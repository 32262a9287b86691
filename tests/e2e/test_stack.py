"""The `make up` stack (SQLite, LocalExecutor, embedded store) as users meet it: the trigger form in a real
browser (headless Debian Chromium driven by Playwright), `airflow dags trigger --conf`, and the REST API v2."""

import json
import shutil
import time

import pytest

from devstack import Stack, free_port
from helpers import ROOT
from usergroup.store.engine import create_store_engine
from usergroup.store.repository import Store

pytestmark = pytest.mark.live  # a live stack: not in `make test-fast`

ARTIFACTS = ROOT / "artifacts"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("stack-home"), port=free_port())
    assert "usergroup.db" in stack.env["AIRFLOW_CONN_USERGROUP_DEFAULT"]  # the embedded store, as after `make up`
    try:
        yield stack.up()
    finally:
        stack.down()


@pytest.fixture(scope="module")
def store(stack):
    engine = create_store_engine(f"sqlite:///{stack.home / 'usergroup.db'}")
    yield Store(engine)
    engine.dispose()


def runs(stack: Stack) -> list[dict]:
    return stack.api("GET", "/dags/create_user_group/dagRuns", params={"limit": 100}).json()["dag_runs"]


def subscription_named(store: Store, name: str):
    with store.transaction() as repo:
        return next((s for s in repo.list_subscriptions() if s.user_group.group_name == name), None)


def wait_new_run(stack: Stack, known: set[str], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [r["dag_run_id"] for r in runs(stack) if r["dag_run_id"] not in known]
        if new:
            return new[0]
        time.sleep(0.3)
    raise TimeoutError("no new run appeared")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")  # Debian's; without it, Playwright's own (`make browser` gets one)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()


def test_the_trigger_form_in_a_browser(stack, store, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(stack.base + "/")
    page.locator("input[name=username]").fill("admin")
    page.locator("input[type=password]").fill(stack.password)
    page.locator("button[type=submit]").click()
    page.wait_for_url(stack.base + "/")
    page.goto(stack.base + "/dags/create_user_group")
    page.get_by_role("button", name="Trigger").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    field = dialog.locator("#element_group_name")
    field.wait_for()
    assert "Group name" in dialog.inner_text()
    assert "no leading or trailing whitespace, no control characters" in dialog.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "trigger-form.png"))
    before = {r["dag_run_id"] for r in runs(stack)}
    submit = dialog.get_by_role("button", name="Trigger")

    field.fill("")  # empty: the form itself refuses, before anything is sent
    page.get_by_text("This field is required").wait_for()
    assert submit.is_disabled()

    field.fill(" leading space")  # the browser cannot check the pattern; the server refuses with the rule
    submit.click()
    dialog.get_by_text("Invalid input for param group_name: ' leading space' does not match").wait_for()
    assert {r["dag_run_id"] for r in runs(stack)} == before

    field.fill("Browser Lab <b>ü</b>")
    submit.click()
    dialog.wait_for(state="hidden")
    run_id = wait_new_run(stack, before)
    assert stack.wait_run(run_id) == "success"
    sub = subscription_named(store, "Browser Lab <b>ü</b>")
    assert sub is not None and sub.status == "active" and sub.insync
    page.goto(stack.base + f"/dags/create_user_group/runs/{run_id}")
    page.get_by_text("success").first.wait_for()
    page.close()


def test_the_cli_trigger(stack, store):
    before = {r["dag_run_id"] for r in runs(stack)}
    result = stack.airflow("dags", "trigger", "create_user_group", "--conf", json.dumps({"group_name": "CLI Lab"}),
                           "-o", "json")
    run_id = json.loads(result.stdout[result.stdout.index("[{"):])[0]["dag_run_id"]
    assert stack.wait_run(run_id) == "success"
    assert subscription_named(store, "CLI Lab").status == "active"
    bad = stack.airflow("dags", "trigger", "create_user_group", "--conf", '{"group_name": "tab\\there"}',
                        check=False)
    assert bad.returncode != 0 and "Invalid input for param group_name" in bad.stdout + bad.stderr
    assert {r["dag_run_id"] for r in runs(stack)} == before | {run_id}


def test_the_rest_api(stack, store):
    before = {r["dag_run_id"] for r in runs(stack)}
    response = stack.trigger({"group_name": "REST Lab"})
    assert response.status_code == 200, response.text
    run_id = response.json()["dag_run_id"]
    assert stack.wait_run(run_id) == "success"
    assert subscription_named(store, "REST Lab").status == "active"
    bad = stack.trigger({"group_name": ""})
    assert bad.status_code == 400 and "Invalid input for param group_name" in bad.text
    assert {r["dag_run_id"] for r in runs(stack)} == before | {run_id}
