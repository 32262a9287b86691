"""Subscription events on a live Airflow: the example consumer (examples/dags/subscription_events.py, a DAG
scheduled on the subscriptions' assets) runs for a create, a modify and a terminate with what each left, and for
a bulk run's items; clearing a completed `done` replays it and announces nothing again."""

import re
import time
from urllib.parse import unquote

import pytest

from live import LiveAirflow, chromium, logged_in

pytestmark = [pytest.mark.live, pytest.mark.xdist_group("live")]  # live: not in test-fast; one worker

CONSUMER = "subscription_events"
USER_GROUPS = "usergroup://subscriptions/user_group"


@pytest.fixture
def consumer(live):
    """The example consumer, unpaused for this test only (paused, it queues nothing)."""
    deadline = time.monotonic() + 120
    while live.api("GET", f"/dags/{CONSUMER}").status_code != 200:  # the dag-processor parses examples/dags
        assert time.monotonic() < deadline, "the dag-processor did not parse examples/dags/subscription_events.py"
        time.sleep(1)
    assert live.api("PATCH", f"/dags/{CONSUMER}", json={"is_paused": False}).status_code == 200
    yield
    live.api("PATCH", f"/dags/{CONSUMER}", json={"is_paused": True})
    live.idle()


def trigger(live: LiveAirflow, dag_id: str, **conf) -> str:
    response = live.trigger(conf, dag_id=dag_id)
    assert response.status_code == 200, response.text
    run_id = response.json()["dag_run_id"]
    assert live.wait_run(run_id, dag_id=dag_id) == "success"
    return run_id


def consumed(live: LiveAirflow, sources: dict[str, str], wanted: int, timeout: float = 120) -> list[dict]:
    """The asset events the consumer's runs consumed whose source is one of `sources` (run id: DAG id; the stack
    is shared with the other live tests, whose events a first consumer run takes too), oldest first, each with
    `consumer_run` (the run that consumed it) and each consumer run having succeeded, once there are `wanted`
    of them (then a moment more: none beyond them may come)."""
    deadline, settled = time.monotonic() + timeout, None
    while True:
        runs = live.api("GET", f"/dags/{CONSUMER}/dagRuns", params={"limit": 100}).json()["dag_runs"]
        ended = all(r["state"] in ("success", "failed") for r in runs)
        events = sorted(({**e, "consumer_run": r["dag_run_id"]} for r in runs for e in live.api(
            "GET", f"/dags/{CONSUMER}/dagRuns/{r['dag_run_id']}/upstreamAssetEvents").json()["asset_events"]
            if sources.get(e["source_run_id"]) == e["source_dag_id"]), key=lambda e: e["id"])
        if ended and len(events) >= wanted:
            if settled is not None and time.monotonic() > settled:
                assert {r["state"] for r in runs} == {"success"}
                return events
            settled = settled or time.monotonic() + 5
        assert time.monotonic() < deadline, f"the consumer consumed {len(events)} events, not {wanted}: {events}"
        time.sleep(0.5)


def test_the_consumer_runs_for_a_create_a_modify_a_terminate_and_a_bulk_run(live, consumer):
    created = trigger(live, "create_user_group", group_name="Evented Live Lab")
    sources = {created: "create_user_group"}
    (event,) = [e["extra"] for e in consumed(live, sources, 1)]
    sid = event["subscription_id"]
    assert (event["workflow"], event["target"], event["status"]) == ("create_user_group", "CREATE", "active")
    sources[trigger(live, "modify_user_group", subscription_id=sid, group_name="Evented Renamed")] = \
        "modify_user_group"
    sources[trigger(live, "terminate_user_group", subscription_id=sid)] = "terminate_user_group"
    events = [e["extra"] for e in consumed(live, sources, 3)]
    assert [(e["subscription_id"], e["workflow"], e["target"], e["status"]) for e in events] == [
        (sid, "create_user_group", "CREATE", "active"), (sid, "modify_user_group", "MODIFY", "active"),
        (sid, "terminate_user_group", "TERMINATE", "terminated")]
    assert events[0]["version"] < events[1]["version"] < events[2]["version"]

    # The completed create's `done` cleared: it replays its committed step and announces nothing again.
    cleared = live.api("POST", "/dags/create_user_group/clearTaskInstances", json={
        "dag_run_id": created, "task_ids": ["done"], "dry_run": False, "only_failed": False,
        "reset_dag_runs": True})
    assert cleared.status_code == 200, cleared.text
    assert live.wait_run(created, dag_id="create_user_group") == "success"
    tries = live.api("GET", f"/dags/create_user_group/dagRuns/{created}/taskInstances/done").json()["try_number"]
    assert tries == 2

    bulk = live.trigger({"group_names": [f"Evented Bulk {i}" for i in range(25)]}, dag_id="create_user_groups")
    assert bulk.status_code == 200, bulk.text
    assert live.wait_run(bulk.json()["dag_run_id"], dag_id="create_user_groups", timeout=240) == "success"
    sources[bulk.json()["dag_run_id"]] = "create_user_groups"
    events = [e["extra"] for e in consumed(live, sources, 4)]
    assert len(events) == 4  # nothing from the replay
    chunk = events[3]
    assert (chunk["workflow"], chunk["target"], chunk["count"]) == ("create_user_group", "CREATE", 25)
    assert sorted(s["status"] for s in chunk["subscriptions"]) == ["active"] * 25


def test_airflows_assets_page_lists_the_subscriptions_asset_and_its_events(live, consumer):
    run_id = trigger(live, "create_user_group", group_name="Assets Page Lab")
    (event,) = consumed(live, {run_id: "create_user_group"}, 1)
    with chromium() as browser:
        page = logged_in(browser, live, "admin")
        page.goto(f"{live.base}/assets")
        link = page.get_by_role("link", name=USER_GROUPS)
        link.wait_for(timeout=30_000)
        link.click()
        page.get_by_text("Triggered Dag Run").first.wait_for(timeout=30_000)
        shown = int(page.get_by_text(re.compile(r"^\d+ Asset Events?$")).first.inner_text().split()[0])
        assert shown >= 1 and "Source:\ncreate_user_group" in page.inner_text("body")
        # each event links the consumer's run it triggered (the newest first: ours is on the first page); its
        # extra (folded in an editor) is checked over REST
        triggered = page.locator(f"a[href^='/dags/{CONSUMER}/runs/asset_triggered__']")
        hrefs = {unquote(triggered.nth(i).get_attribute("href")) for i in range(triggered.count())}
        assert f"/dags/{CONSUMER}/runs/{event['consumer_run']}" in hrefs
