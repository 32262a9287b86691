"""Through Airflow (`dag.test()`) against a real SCIM server over HTTP, on both stores: a group created, renamed,
validated, used by a user (created, modified, validated, terminated) and terminated is, after every step, exactly what
any SCIM client reading the server sees."""

import httpx
import pytest

from helpers import USER_EXTERNAL, USER_INTERNAL, approving
from scim import read, scim_server

pytestmark = pytest.mark.slow

EXTENSION = "urn:usergroup:params:scim:schemas:extension:2.0:User"


@pytest.fixture
def scim(store, tmp_path, monkeypatch):
    server = scim_server(tmp_path)
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_OSSBSS", server.connection())
    yield server
    server.stop()


def subscriptions(store, product_type):
    with store.transaction() as repo:
        return [s for s in repo.list_subscriptions() if s.product.product_type == product_type]


def group_on_server(scim, sub) -> dict:
    [group] = read(scim, "Groups", sub.subscription_id)
    assert (group["id"], group["displayName"]) == (str(sub.user_group.group_id), sub.user_group.group_name)
    return group


def user_on_server(scim, sub) -> dict:
    [user] = read(scim, "Users", sub.subscription_id)
    assert (user["id"], user["userName"], user["userType"]) == (str(sub.user.user_id), sub.user.username,
                                                                sub.affiliation)
    assert (user.get(EXTENSION) or {}).get("age") == sub.user.age
    return user


def test_both_products_whole_lives_are_what_the_scim_server_shows(run, dag_test, store, scim):
    run("create_user_group", group_name="Optics Lab")
    [group] = subscriptions(store, "UserGroup")
    gid = str(group.subscription_id)
    assert isinstance(group.user_group.group_id, str) and group_on_server(scim, group).get("members", []) == []

    run("modify_user_group", subscription_id=gid, group_name="Photonics Lab", version=group.version)
    [group] = subscriptions(store, "UserGroup")
    assert group.user_group.group_name == "Photonics Lab"
    group_on_server(scim, group)
    run("validate_user_group", subscription_id=gid)

    with approving(store) as refusals:
        state, out = dag_test("create_user", product=USER_EXTERNAL, user_group_id=gid, username="zoë", age=33)
        assert state == "success", (refusals, out[-3000:])
    [user] = subscriptions(store, "User")
    uid = str(user.subscription_id)
    user_on_server(scim, user)
    assert [m["value"] for m in group_on_server(scim, group)["members"]] == [user.user.user_id]

    run("modify_user", subscription_id=uid, username="Zoë Z", age=34, version=user.version)
    [user] = subscriptions(store, "User")
    assert (user.user.username, user.user.age) == ("Zoë Z", 34)
    user_on_server(scim, user)
    run("validate_user", subscription_id=uid)

    run("terminate_user", subscription_id=uid)
    assert read(scim, "Users") == [] and group_on_server(scim, group).get("members", []) == []
    run("terminate_user_group", subscription_id=gid)
    assert read(scim, "Groups") == []
    with store.transaction() as repo:
        assert {s.status for s in repo.list_subscriptions()} == {"terminated"}


def test_validate_names_what_changed_behind_our_back(run, dag_test, store, scim):
    run("create_user_group", group_name="Drift Lab")
    [group] = subscriptions(store, "UserGroup")
    run("create_user", product=USER_INTERNAL, user_group_id=str(group.subscription_id), username="drifter")
    [user] = subscriptions(store, "User")
    from usergroup.airflow.ossbss_hook import OssBssHook

    OssBssHook().client.drift(group.subscription_id, group_name="Drifted")  # as any other SCIM client could
    state, out = dag_test("validate_user_group", subscription_id=str(group.subscription_id))
    assert state == "failed"
    assert "group_name: expected 'Drift Lab', found 'Drifted' in the OSS/BSS" in out
    state, out = dag_test("validate_user", subscription_id=str(user.subscription_id))  # its user is out of sync too
    assert state == "failed"
    assert "user.group.group_name: expected 'Drift Lab', found 'Drifted' in the OSS/BSS" in out


def test_a_name_the_scim_server_holds_fails_the_create_with_its_detail(dag_test, store, scim):
    taken = httpx.post(f"{scim.url}/Groups", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                                   "displayName": "Taken"})  # by another SCIM client
    assert taken.status_code == 201
    state, out = dag_test("create_user_group", group_name="taken")
    assert state == "failed"
    assert "Group 'taken' not provisioned: SCIM server answered 409" in out
    assert "already in use" in out and len(read(scim, "Groups")) == 1
    [sub] = subscriptions(store, "UserGroup")
    assert (sub.status, sub.insync) == ("provisioning", False)  # as the last step it passed left it
    with store.transaction() as repo:
        [process] = repo.processes_of(sub.subscription_id)
    assert (process["status"], process["last_step"]) == ("failed", "provision_user_group")


def test_a_bulk_run_of_two_hundred_sends_bulk_requests_and_fails_only_the_five_refused(dag_test, store, scim, knobs):
    knobs(USERGROUP_CHUNK_SIZE="50")  # four chunks: a Bulk request each
    names = [f"Scim bulk {i:03}" for i in range(200)]
    for taken in names[:5]:  # held by another SCIM client: this server's displayName is unique
        assert httpx.post(f"{scim.url}/Groups", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                                      "displayName": taken.upper()}).status_code == 201
    state, out = dag_test("create_user_groups", group_names=names)
    assert state == "failed" and "5 of 200 items did not complete" in out
    with store.transaction() as repo:
        procs = repo.list_processes(dag_id="create_user_groups")
        failed = {p["input_state"]["group_name"]: p["failed_reason"] for p in procs if p["status"] == "failed"}
        assert set(failed) == set(names[:5]) and len([p for p in procs if p["status"] == "completed"]) == 195
        assert all("SCIM server answered 409 to its Bulk operation" in reason for reason in failed.values())
        active = {str(s.subscription_id): s for s in repo.list_subscriptions() if s.status == "active"}
    on_server = {g["externalId"]: g for g in read(scim, "Groups") if "externalId" in g}
    assert set(on_server) == set(active)
    assert all(on_server[sid]["id"] == str(s.user_group.group_id) for sid, s in active.items())
    log = scim.log.read_text()
    assert log.count("POST /v2/Bulk") == 4 and log.count("POST /v2/Groups ") == 5  # the five are the other client's
