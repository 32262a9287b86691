"""The API's lists in-process, on both databases: the process list filtered, sorted and paged in SQL, the
subscription search by the blocks' text, and their ranges."""

import pytest

from helpers import app_client, create, create_user, run_on
from usergroup.interfaces import deps
from usergroup.workflows.user_group.modify_user_group import modify_user_group


@pytest.fixture
def api(store, monkeypatch):
    yield app_client("admin", monkeypatch)
    deps.store.cache_clear()


def test_processes_filtered_sorted_and_paged(store, api):
    lab = create(store, "List Lab")["subscription"]["subscription_id"]
    create(store, "List Other")
    create_user(store, lab, "bob")
    listed = api.get("/api/processes/", params={"filter": "workflowName,create_user_group", "sort": "startedAt,asc"})
    assert [p["workflow_name"] for p in listed.json()] == ["create_user_group"] * 2
    assert listed.headers["Content-Range"] == "processes 0-2/2"
    newest = api.get("/api/processes/", params={"range": "0,1"})
    assert newest.json()[0]["workflow_name"] == "create_user" and newest.headers["Content-Range"] == "processes 0-1/3"
    by_name = api.get("/api/processes/", params={"sort": "workflowName,desc,startedAt,asc"}).json()
    assert [p["workflow_name"] for p in by_name] == ["create_user_group", "create_user_group", "create_user"]
    assert api.get("/api/processes/", params={"filter": "lastStatus,completed", "range": "1,3"}).headers[
        "Content-Range"] == "processes 1-3/3"
    assert api.get("/api/processes/", params={"range": "0,99999999999"}).status_code == 400
    assert api.get("/api/processes/", params={"sort": "startedAt,up"}).status_code == 400


def test_a_user_is_found_by_its_groups_current_name(store, api):
    lab = create(store, "Search Lab")["subscription"]["subscription_id"]
    user = create_user(store, lab, "carol")["subscription"]["subscription_id"]
    run_on(store, modify_user_group, lab, group_name="Renamed Zebra")
    found = api.get("/api/subscriptions/search", params={"query": "zebra carol"}).json()
    assert [s["subscription_id"] for s in found] == [user]  # its description still names the old name
    assert api.get("/api/subscriptions/search", params={"query": "100%"}).json() == []
