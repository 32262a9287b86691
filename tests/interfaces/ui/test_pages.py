"""The pages in-process, on both databases: what each shows (escaped), what a viewer may not do, and forged or
malformed posts refused before anything is written. Airflow's login and roles are the live tests' (test_ui.py);
here a user stands in for them."""

from types import SimpleNamespace

import pytest

from helpers import USER_INTERNAL, app_client, counts, create, create_user
from usergroup.interfaces import deps

SCRIPT = "<script>alert(1)</script>"
ORIGIN = {"Origin": "http://testserver"}


@pytest.fixture
def world(store):
    lab = create(store, SCRIPT)["subscription"]["subscription_id"]
    alice = create_user(store, lab, "alice")["subscription"]["subscription_id"]
    yield SimpleNamespace(store=store, lab=lab, alice=alice)
    deps.store.cache_clear()


def test_the_list_escapes_names_and_pages_filters(world, monkeypatch):
    admin = app_client("admin", monkeypatch)
    html = admin.get("/ui/subscriptions").text
    assert f"User Group {SCRIPT}" not in html and "User Group &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "1&ndash;2 of 2 subscriptions, page 1 of 1" in html
    only = admin.get("/ui/subscriptions", params={"product": USER_INTERNAL, "page_number": "x"}).text
    assert "User alice from group" in only and "1&ndash;1 of 1" in only
    assert "No subscription matches." in admin.get("/ui/subscriptions", params={"query": '"><b>'}).text
    past = admin.get("/ui/subscriptions", params={"page_number": "999999999"})
    assert "page 1 of 1" in past.text and "User alice" in past.text  # past the end: the last page
    assert past.headers["Content-Security-Policy"] == "frame-ancestors 'self'"  # no other site frames it
    assert past.headers["X-Frame-Options"] == "SAMEORIGIN"


def test_a_subscription_shows_its_users_processes_and_what_it_may_run(world, monkeypatch):
    admin = app_client("admin", monkeypatch)
    html = admin.get(f"/ui/subscriptions/{world.lab}").text
    assert f'href="/orchestrator/ui/subscriptions/{world.alice}"' in html  # used by alice
    assert "can not be terminated as it is used in other subscriptions" in html
    assert 'data-workflow="create_user"' in html and f'name="user_group_id" value="{world.lab}"' in html
    assert SCRIPT not in html
    user = admin.get(f"/ui/subscriptions/{world.alice}").text
    assert f'class="owner" href="/orchestrator/ui/subscriptions/{world.lab}"' in user
    missing = admin.get("/ui/subscriptions/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and "no subscription 00000000-" in missing.text
    malformed = admin.get("/ui/subscriptions/<b>x")
    assert malformed.status_code == 422 and "subscription_id: Input should be a valid UUID" in malformed.text
    assert "<b>x" not in malformed.text


def test_a_process_with_pending_steps_and_a_run_that_is_not_ours(world, monkeypatch):
    admin = app_client("admin", monkeypatch)
    half = create(world.store, "Half", upto=2)  # two of seven steps done
    html = admin.get(f"/ui/processes/{half['process_id']}").text
    assert html.count("badge pending") == 5 and html.count("badge success") == 2
    assert "Abort&hellip;" in html and "Resume&hellip;" not in html  # running: abort, not resume
    other = admin.get("/ui/runs/some_other_dag/manual__2026-11-29T10:00:00+00:00").text
    assert "not one of the usergroup workflows" in other
    for nul in ("/ui/runs/%00/%00", "/ui/runs/create_user_group/a%00b"):  # no process, not a 500
        assert admin.get(nul).status_code == 200, nul
    assert admin.get("/api/processes/", params={"filter": "workflowName,a\x00"}).json() == []


def test_a_viewer_reads_but_acts_on_nothing(world, monkeypatch):
    viewer = app_client("viewer", monkeypatch)
    html = viewer.get(f"/ui/subscriptions/{world.lab}").text
    assert "Your role may not run modify_user_group" in html and "Abort&hellip;" not in html
    token = html.split('name="csrf_token" value="')[1].split('"')[0]
    before = counts(world.store)
    for action in ("start/validate_user_group", "set_in_sync"):
        path = f"/ui/subscriptions/{world.lab}/{action}"
        refused = viewer.post(path, data={"csrf_token": token, "subscription_id": world.lab}, headers=ORIGIN)
        assert refused.status_code == 403 and "viewer may not" in refused.text, path
    assert counts(world.store) == before


def test_forged_and_malformed_posts_write_nothing(world, monkeypatch):
    admin = app_client("admin", monkeypatch)
    token = admin.get(f"/ui/subscriptions/{world.lab}").text.split('name="csrf_token" value="')[1].split('"')[0]
    path = f"/ui/subscriptions/{world.lab}/start/modify_user_group"
    before = counts(world.store)
    assert admin.post(path, data={"csrf_token": token, "group_name": "X"}).status_code == 403  # no Origin
    evil = admin.post(path, data={"csrf_token": token, "group_name": "X"}, headers={"Origin": "http://127.0.0.1:1"})
    assert evil.status_code == 403 and "another origin" in evil.text
    assert admin.post(path, data={"csrf_token": "forged", "group_name": "X"}, headers=ORIGIN).status_code == 403
    stale = app_client("admin", monkeypatch)
    stale.cookies.set("_token", "a-later-login")  # a form from before another login
    assert stale.post(path, data={"csrf_token": token, "group_name": "X"}, headers=ORIGIN).status_code == 403
    bad = admin.post(path, data={"csrf_token": token, "subscription_id": world.lab, "group_name": " X",
                                 "version": "five"}, headers=ORIGIN)
    assert bad.status_code == 400
    assert "group_name must not start or end with whitespace" in bad.text and "version: Input should be" in bad.text
    assert 'value=" X"' in bad.text  # what was typed stays in the form
    taken = admin.post(f"/ui/subscriptions/{world.alice}/start/modify_user", headers=ORIGIN, data={
        "csrf_token": token, "subscription_id": world.alice, "username": "alice", "age": "151"})
    assert taken.status_code == 400 and "age: Input should be less than or equal to 150" in taken.text
    other = admin.post(path, headers=ORIGIN, data={"csrf_token": token, "subscription_id": world.alice,
                                                    "group_name": " Y"})  # the page's subscription, not the body's
    assert other.status_code == 400 and "group_name must not start or end with whitespace" in other.text
    assert f'name="subscription_id" value="{world.alice}"' not in other.text
    for wrong in ("modify_user", "create_user_group", "no_such_workflow"):
        refused = admin.post(f"/ui/subscriptions/{world.lab}/start/{wrong}", headers=ORIGIN,
                             data={"csrf_token": token, "group_name": "Z"})
        assert refused.status_code == 404 and "on the page of a User Group" in refused.text, wrong
    huge = admin.post(path, headers=ORIGIN, files={"csrf_token": (None, token), "group_name": (None, "x" * 1_100_000)})
    assert huge.status_code == 400 and "Part exceeded maximum size" in huge.text and "<html" in huge.text
    assert counts(world.store) == before


def test_an_abort_from_the_page_says_where_it_came_from(world, monkeypatch, airflow_db):
    """Airflow's metadata database is there (and holds no run of this process: nothing to mark failed)."""
    admin = app_client("admin", monkeypatch)
    half = create(world.store, "Half", upto=2)
    page = admin.get(f"/ui/processes/{half['process_id']}/abort").text
    assert "This cannot be undone." in page
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    done = admin.post(f"/ui/processes/{half['process_id']}/abort", data={"csrf_token": token}, headers=ORIGIN,
                      follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == \
        f"/orchestrator/ui/processes/{half['process_id']}?done=aborted"
    with world.store.transaction() as repo:
        process = repo.get_process(half["process_id"])
    assert process["status"] == "aborted" and process["failed_reason"].startswith(
        "aborted by admin in the Subscriptions page")
    shown = admin.get(f"/ui/processes/{half['process_id']}").text
    assert "badge pending" not in shown and "Abort&hellip;" not in shown  # no step of it will run
