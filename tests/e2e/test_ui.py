"""The Subscriptions pages inside Airflow's UI, in a real browser (headless Chromium) against a live stack, logged in
as an admin and as a viewer: the nav entry, the list, search, filters and paging, a subscription's page, starting
workflows from it, the Process tab with resume and abort, set in sync, escaping, and forged requests."""

import re
from urllib.parse import quote

import pytest
import requests

from helpers import ROOT, USER_EXTERNAL, USER_GROUP, USER_INTERNAL, create, oss_for
from live import Client, chromium, logged_in, parked

pytestmark = [pytest.mark.live, pytest.mark.xdist_group("live")]  # live: not in test-fast; one worker

ARTIFACTS = ROOT / "artifacts"
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def store(live_store):
    return live_store[1]


@pytest.fixture(scope="module")
def api(live):
    return Client(live, "admin")


@pytest.fixture(scope="module")
def groups(api) -> dict[str, str]:
    """Three groups and a user in the first, made over the API: name -> subscription id."""
    pids = {n: api.start("create_user_group", {"product": USER_GROUP}, {"group_name": n})
            for n in ("UI Lab", SCRIPT, "UI Physics")}
    ids = {n: api.wait(pid)["subscriptions"][0]["subscription_id"] for n, pid in pids.items()}
    user = api.wait(api.start("create_user", {"product": USER_INTERNAL},
                              {"user_group_id": ids["UI Lab"], "username": "alice", "age": 30}))
    assert user["last_status"] == "completed", user
    return ids | {"alice": user["subscriptions"][0]["subscription_id"]}


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def admin(browser, live):
    page, dialogs = logged_in(browser, live, "admin"), []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))  # an alert() would be a defect
    yield page
    assert dialogs == []


@pytest.fixture(scope="module")
def viewer(browser, live):
    return logged_in(browser, live, "viewer")


def frame(page):
    return page.frame_locator("iframe")


def open_subscription(page, live, subscription_id: str):
    """The subscription's page inside Airflow (the nav view keeps the frame's path in Airflow's URL)."""
    page.goto(f"{live.base}/plugin/subscriptions/orchestrator/ui/subscriptions/{subscription_id}")
    frame(page).locator("#fields").wait_for()
    return frame(page)


def process_tab(page, live, process: dict):
    page.goto(f"{live.base}/dags/{process['dag_id']}/runs/{quote(process['run_id'], safe='')}/plugin/process")
    frame(page).locator(".process").first.wait_for()
    return frame(page)


def load(page, locator) -> None:
    """Click what loads another page into the frame, and wait until it has."""
    with page.frames[-1].expect_navigation():
        locator.click()


def rows(view) -> list[str]:
    view.locator("table#subscriptions").wait_for()
    return [t.strip() for t in view.locator("table#subscriptions tbody tr td:first-child a").all_inner_texts()]


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def test_the_nav_entry_opens_the_list_inside_airflow_with_what_the_store_holds(live, store, groups, admin):
    admin.goto(live.base + "/")
    admin.get_by_role("link", name="Subscriptions").first.click()
    view = frame(admin)
    shown = rows(view)
    with store.transaction() as repo:
        held, total = repo.page_subscriptions(limit=25)
    assert shown == [s.description for s in held] and total == 4
    assert f"User Group {SCRIPT}" in shown  # as text: no script ran (the fixture asserts no dialog opened)
    assert view.locator("#range").inner_text() == "1–4 of 4 subscriptions, page 1 of 1"
    assert admin.url.startswith(live.base + "/plugin/subscriptions")


def test_search_filters_and_paging(live, store, groups, admin):
    view = frame(admin)
    admin.goto(live.base + "/plugin/subscriptions")
    view.get_by_label("Search").fill("physics")
    load(admin, view.get_by_role("button", name="Search"))
    assert rows(view) == ["User Group UI Physics"]
    view.get_by_label("Search").fill("")
    view.get_by_label("Product").select_option(label="User internal")
    load(admin, view.get_by_role("button", name="Search"))
    assert rows(view) == ["User alice from group UI Lab (internal)"]
    view.get_by_label("Product").select_option(label="All products")
    view.get_by_label("Status").select_option("terminated")
    load(admin, view.get_by_role("button", name="Search"))
    view.get_by_text("No subscription matches.").wait_for()
    for i in range(30):  # more than a page
        create(store, f"Paged {i:02}")
    admin.goto(live.base + "/plugin/subscriptions/orchestrator/ui/subscriptions?query=paged")
    first = rows(view)
    assert len(first) == 25 and view.locator("#range").inner_text() == "1–25 of 30 subscriptions, page 1 of 2"
    load(admin, view.get_by_role("link", name="Next →"))
    view.get_by_text("26–30 of 30 subscriptions, page 2 of 2").wait_for()
    assert len(rows(view)) == 5 and not set(rows(view)) & set(first)


def test_a_subscription_page_shows_its_block_users_processes_and_steps(live, groups, admin):
    view = open_subscription(admin, live, groups["alice"])
    assert "User alice from group UI Lab (internal)" in view.locator("h1").inner_text()
    view.locator("a.owner", has_text="UI Lab").click()  # the user's group, linked
    view.locator("h1", has_text="User Group UI Lab").wait_for()
    assert view.locator("#used-by").inner_text().strip() == "User alice from group UI Lab (internal)"
    process = view.locator(".process").first
    assert "create_user_group" in process.inner_text() and "completed" in process.inner_text()
    steps = process.locator("table.steps tbody tr")
    assert steps.count() == 7 and all("success" in t for t in steps.all_inner_texts())
    assert "Not now:" in view.locator("[data-workflow=terminate_user_group]").inner_text()
    admin.set_viewport_size({"width": 1400, "height": 1900})
    shot(admin, "ui-subscription.png")
    admin.set_viewport_size({"width": 1400, "height": 1000})
    process.locator("a[data-airflow]").click()  # its DAG run, in Airflow's own page (not inside the frame)
    admin.wait_for_url(re.compile(r".*/dags/create_user_group/runs/api__.*"))
    admin.get_by_role("link", name="Process", exact=True).wait_for()
    assert admin.locator("iframe").count() == 0


def test_modify_from_the_page_reaches_completed_and_the_new_name_shows(live, api, groups, admin):
    view = open_subscription(admin, live, groups["UI Physics"])
    card = view.locator("[data-workflow=modify_user_group]")
    card.get_by_label("New group name").fill(" UI Physics")  # the rules of the form: refused, nothing starts
    card.get_by_role("button", name="Start").click()
    view.get_by_text("group_name: Value error, group_name must not start or end with whitespace").wait_for()
    before = len(api("GET", "/processes/").json())
    card = view.locator("[data-workflow=modify_user_group]")
    assert card.get_by_label("New group name").input_value() == " UI Physics"  # what was typed stays
    card.get_by_label("New group name").fill("UI Physics Renamed")
    card.get_by_role("button", name="Start").click()
    view.get_by_text("The workflow was started").wait_for()
    assert len(api("GET", "/processes/").json()) == before + 1
    process_id = view.locator(".process").get_attribute("data-process")
    assert api.wait(process_id)["last_status"] == "completed"
    view = open_subscription(admin, live, groups["UI Physics"])
    assert view.locator("h1").inner_text() == "User Group UI Physics Renamed"
    assert "UI Physics Renamed" in view.locator("[data-block=user_group]").inner_text()
    assert "modify_user_group" in view.locator(".process").first.inner_text()


def test_terminate_of_a_group_with_users_shows_the_refusal(live, groups, admin):
    view = open_subscription(admin, live, groups["UI Lab"])
    reason = view.locator("[data-workflow=terminate_user_group] .reason").inner_text()
    assert "can not be terminated as it is used in other subscriptions" in reason and "alice" in reason
    forced = post(admin, f"/subscriptions/{groups['UI Lab']}/start/terminate_user_group",
                  subscription_id=groups["UI Lab"])  # past the page: the API's own check refuses
    assert forced[0] == 400 and "can not be terminated as it is used in other subscriptions" in forced[1]


def post(page, path: str, token: str | None = None, **fields) -> tuple[int, str]:
    """A POST from the page's own origin, as a hand-made form would send it; the page's CSRF token unless given."""
    frame_url = page.frames[-1].url if len(page.frames) > 1 else page.url
    assert "/orchestrator/ui/" in frame_url, frame_url
    token = token if token is not None else page.frames[-1].locator("input[name=csrf_token]").first.input_value()
    return page.frames[-1].evaluate("""async ([path, body]) => {
        const r = await fetch('/orchestrator/ui' + path, {method: 'POST', body: new URLSearchParams(body)});
        return [r.status, await r.text()]; }""", [path, {"csrf_token": token, **fields}])


def test_the_process_tab_of_a_failed_run_resumes_it_and_another_is_aborted(live, store, api, groups, admin):
    oss = oss_for(store)
    lab, script = groups["UI Lab"], groups[SCRIPT]
    oss.drift(lab, group_name="UI Lab (changed by hand)")
    oss.drift(script, group_name="changed")
    failed = {sid: api.wait(api.start("validate_user_group", {"subscription_id": sid}, {}), until=("failed",))
              for sid in (lab, script)}
    assert all(p["last_status"] == "failed" for p in failed.values())

    admin.goto(live.base + "/plugin/subscriptions/orchestrator/ui/subscriptions?query=ui")
    assert len(rows(frame(admin))) == 3
    assert frame(admin).locator("tr.failed").count() == 1  # one a failed process holds stands out
    shot(admin, "ui-subscriptions.png")

    view = open_subscription(admin, live, lab)  # out of sync, held: set in sync answers with the guard's reason
    view.get_by_role("button", name="Set in sync").click()
    assert "stays out of sync: process" in view.locator("#error").inner_text()

    view = process_tab(admin, live, failed[lab])
    assert "check_user_group_in_ossbss" in view.locator(".process").inner_text()
    assert "expected 'UI Lab', found 'UI Lab (changed by hand)'" in view.locator(".process").inner_text()
    shot(admin, "ui-process-tab.png")
    oss.drift(lab, group_name="UI Lab")  # the operator repairs the OSS/BSS, then resumes
    view.get_by_role("button", name="Resume…").click()
    view.get_by_role("heading", name="Resume process validate_user_group?").wait_for()
    view.get_by_role("button", name="Resume").click()
    view.get_by_text("The process was resumed.").wait_for()
    assert api.wait(failed[lab]["process_id"])["last_status"] == "completed"
    assert live.wait_run(failed[lab]["run_id"], dag_id="validate_user_group") == "success"

    view = process_tab(admin, live, failed[script])
    view.get_by_role("button", name="Abort…").click()
    view.get_by_role("link", name="Cancel").click()  # the confirmation: nothing happens without it
    view.locator(".process").wait_for()
    assert api("GET", f"/processes/{failed[script]['process_id']}").json()["last_status"] == "failed"
    view.get_by_role("button", name="Abort…").click()
    view.get_by_role("button", name="Abort").click()
    view.get_by_text("The process was aborted.").wait_for()
    view = open_subscription(admin, live, script)
    view.get_by_role("button", name="Set in sync").click()
    view.get_by_text("The subscription is in sync again.").wait_for()
    assert api("GET", f"/subscriptions/domain-model/{script}").json()["insync"] is True


def test_an_external_user_is_approved_from_the_process_tab_and_a_viewer_only_reads_it(live, api, groups, admin,
                                                                                     viewer):
    pid = api.start("create_user", {"product": USER_EXTERNAL},
                    {"user_group_ids": [groups["UI Physics"]], "username": "carol"})
    process = api.wait(pid, until=("suspended", "failed", "aborted", "completed"))
    assert process["last_status"] == "suspended", process
    parked(live, process)

    view = process_tab(viewer, live, process)
    form = view.locator("form.answer")
    assert "Approve the external user" in form.inner_text() and "You may read this form" in form.inner_text()
    assert all(b.is_disabled() for b in form.locator("button").all()) and form.locator("button").count() == 2

    view = process_tab(admin, live, process)
    view.locator("form.answer input[name=note]").fill("met them <b>today</b>")
    load(admin, view.locator("form.answer").get_by_role("button", name="Reject"))  # a rejection needs a reason
    assert "reason: Value error, give the reason to reject" in view.locator("#error").inner_text()
    assert view.locator("form.answer input[name=note]").input_value() == "met them <b>today</b>"
    assert api("GET", f"/processes/{pid}").json()["last_status"] == "suspended"
    shot(admin, "ui-approval.png")
    load(admin, view.locator("form.answer").get_by_role("button", name="Approve"))
    view.get_by_text("Your answer was given: the process goes on with it.").wait_for()
    done = api.wait(pid)
    assert done["last_status"] == "completed", done
    (step,) = [s for s in done["steps"] if s["name"] == "approve_user"]
    assert "answered by admin" in step["note"] and "met them <b>today</b>" in step["note"]


def test_a_viewer_sees_everything_and_can_start_nothing(live, api, groups, viewer):
    viewer.goto(live.base + "/plugin/subscriptions")
    assert len(rows(frame(viewer))) >= 4
    view = open_subscription(viewer, live, groups["UI Lab"])
    assert view.locator(".process").count() >= 1
    buttons = view.locator("[data-workflow] button")
    assert buttons.count() >= 2 and all(b.is_disabled() for b in buttons.all())
    assert "Your role may not run modify_user_group" in view.locator("[data-workflow=modify_user_group]").inner_text()
    before, token = len(api("GET", "/processes/").json()), view.locator("input[name=csrf_token]").first.input_value()
    forced = post(viewer, f"/subscriptions/{groups['UI Lab']}/start/validate_user_group", token,
                  subscription_id=groups["UI Lab"])
    assert forced[0] == 403 and "may not run validate_user_group" in forced[1]
    process = api("GET", "/processes/").json()[0]
    view = process_tab(viewer, live, process)
    assert view.locator(".action").count() == 0
    for action in ("resume", "abort"):
        assert post(viewer, f"/processes/{process['process_id']}/{action}", token)[0] == 403
    assert len(api("GET", "/processes/").json()) == before
    anonymous = requests.get(f"{live.base}/orchestrator/ui/subscriptions", timeout=10)
    assert anonymous.status_code == 401 and "not logged in" in anonymous.text


def test_the_list_links_the_apis_documentation_which_tries_a_call(live, groups, admin):
    """The Subscriptions page opens the API's Swagger UI (in its frame: Airflow's sandbox allows no new tab; logged in
    by the UI's cookie): it shows the 11 operations of the OpenAPI, and a call tried from it answers 200."""
    admin.goto(f"{live.base}/plugin/subscriptions")  # the nav entry's page (its home lists asset events too)
    rows(frame(admin))
    load(admin, frame(admin).get_by_role("link", name="its documentation"))
    docs = frame(admin)
    docs.locator(".opblock").first.wait_for()
    assert docs.locator(".opblock").count() == 11
    products = docs.locator(".opblock-get", has=docs.locator("[data-path='/api/products/']"))
    products.locator(".opblock-summary").click()
    products.get_by_role("button", name="Try it out").click()
    products.get_by_role("button", name="Execute").click()
    answered = products.locator(".live-responses-table tr.response .response-col_status").first
    answered.wait_for()
    assert answered.inner_text().strip() == "200"
    assert "User Group" in products.locator(".live-responses-table .microlight").first.inner_text()
    shot(admin, "api-docs.png")


def test_forged_requests_are_refused(live, api, groups, admin):
    """Another origin (another port of this host is the same site, so the cookie goes along) cannot act, nor frame
    a page, and a form without this login's token cannot act either."""
    before = len(api("GET", "/processes/").json())
    open_subscription(admin, live, groups["UI Lab"])
    assert post(admin, f"/subscriptions/{groups['UI Lab']}/start/validate_user_group", token="forged",
                subscription_id=groups["UI Lab"])[0] == 403
    evil = "http://127.0.0.1:1/evil"  # never contacted: the page is served by the browser's route
    target = f"{live.base}/orchestrator/ui/subscriptions/{groups['UI Lab']}/start/validate_user_group"
    page = admin.context.new_page()
    page.route(evil, lambda route: route.fulfill(content_type="text/html", body=(
        f'<form method="post" action="{target}"><input name="subscription_id" value="{groups["UI Lab"]}">'
        '</form><script>document.forms[0].submit()</script>')))
    with page.expect_response(target) as answer:
        page.goto(evil)
    assert answer.value.status == 403 and "another origin" in answer.value.text()
    framing = "http://127.0.0.1:1/frame"  # nor can it frame a page, to make a click on it act
    page.route(framing, lambda route: route.fulfill(content_type="text/html", body=(
        f'<iframe src="{live.base}/orchestrator/ui/subscriptions/{groups["UI Lab"]}"></iframe>')))
    page.goto(framing)
    page.wait_for_timeout(1000)
    assert page.frames[1].url.startswith("chrome-error:") and page.frames[1].locator("#fields").count() == 0
    page.close()
    assert len(api("GET", "/processes/").json()) == before
