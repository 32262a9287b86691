"""The SCIM client against a real SCIM server over HTTP: each call leaves what any SCIM client reading it sees."""

import json
import signal
import subprocess
import sys
from uuid import uuid4

import httpx
import pytest

from scim import read, scim_server
from usergroup.ossbss import Connection, StorePlace, client_for
from usergroup.ossbss.errors import NotFoundError, PermanentError, TransientError
from usergroup.ossbss.scim.connection import ScimConnectionError
from usergroup.ossbss.scim.http import ScimChangedError, ScimConflictError


def client(server=None, **fields):
    conn = json.loads(server.connection(**fields)) if server else {"conn_type": "usergroup_scim", **fields}
    return client_for(Connection(conn_id="usergroup_ossbss", **conn), StorePlace(None, "usergroup"))


@pytest.fixture
def server(tmp_path):
    server = scim_server(tmp_path)
    yield server
    server.stop()


def members(server, group_id) -> list[str]:
    [group] = [g for g in read(server, "Groups") if g["id"] == group_id]
    return [m["value"] for m in group.get("members", [])]


def test_a_group_and_its_user_through_their_lifecycle_are_what_the_server_shows(server):
    oss, group_sid, user_sid = client(server), uuid4(), uuid4()
    group_id = oss.provision_user_group(group_sid, "Lab")
    [group] = read(server, "Groups", group_sid)
    assert (group["id"], group["displayName"], group["externalId"]) == (group_id, "Lab", str(group_sid))
    assert oss.read_user_group(group_sid) == {"group_id": group_id, "group_name": "Lab"}

    assert oss.rename_user_group(group_sid, "Lab 2") is True
    assert oss.rename_user_group(group_sid, "Lab 2") is False  # had it already
    assert read(server, "Groups", group_sid)[0]["displayName"] == "Lab 2"

    user_id = oss.provision_user(user_sid, group_id, "alice", 33, affiliation="external")
    [user] = read(server, "Users", user_sid)
    assert (user["id"], user["userName"], user["userType"]) == (user_id, "alice", "external")
    assert user["urn:usergroup:params:scim:schemas:extension:2.0:User"] == {"age": 33}
    assert members(server, group_id) == [user_id]

    assert oss.update_user(user_sid, "alice2", None) is True
    assert oss.update_user(user_sid, "alice2", None) is False
    [user] = read(server, "Users", user_sid)
    assert user["userName"] == "alice2" and not user.get("urn:usergroup:params:scim:schemas:extension:2.0:User")

    assert oss.deprovision_user(user_sid) is True
    assert read(server, "Users", user_sid) == [] and members(server, group_id) == []
    assert oss.deprovision_user(user_sid) is False  # safe to run twice
    assert oss.deprovision_user_group(group_sid) is True
    assert read(server, "Groups") == [] and oss.read_user_group(group_sid) is None
    assert oss.deprovision_user_group(group_sid) is False


def patch_members(server, group_id, op: str, user_id) -> None:
    """Change a group's members behind our back, as any other SCIM client could."""
    path, value = ("members", [{"value": user_id}]) if op == "add" else (f'members[value eq "{user_id}"]', None)
    answer = httpx.patch(f"{server.url}/Groups/{group_id}", timeout=10, json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": op, "path": path, **({"value": value} if value else {})}]})
    assert answer.status_code < 300, answer.text


def test_read_user_is_the_user_and_the_groups_whose_members_hold_it(server):
    oss, lab, other, sid = client(server), uuid4(), uuid4(), uuid4()
    lab_id, other_id = oss.provision_user_group(lab, "Lab"), oss.provision_user_group(other, "Other Lab")
    user_id = oss.provision_user(sid, lab_id, "alice", 33)
    assert oss.read_user(sid) == {"user_id": user_id, "username": "alice", "age": 33,
                                  "groups": [{"group_id": lab_id, "group_name": "Lab"}]}
    oss.drift(lab, group_name="Renamed Lab")
    assert oss.read_user(sid)["groups"] == [{"group_id": lab_id, "group_name": "Renamed Lab"}]
    patch_members(server, lab_id, "remove", user_id)
    assert oss.read_user(sid)["groups"] == []  # removed from its group
    patch_members(server, other_id, "add", user_id)
    assert oss.read_user(sid)["groups"] == [{"group_id": other_id, "group_name": "Other Lab"}]  # in another one
    bob = uuid4()
    oss.provision_user(bob, other_id, "bob", None)
    assert oss.read_user(bob)["age"] is None and oss.read_user(uuid4()) is None


def test_a_retry_finds_what_the_first_call_created_by_its_external_id(server):
    oss, sid = client(server), uuid4()
    first = oss.provision_user_group(sid, "Lab")
    assert client(server).provision_user_group(sid, "Lab") == first  # a new process, as a retried task is
    assert len(read(server, "Groups")) == 1
    group_id, user_sid = first, uuid4()
    assert oss.provision_user(user_sid, group_id, "bob", None) == oss.provision_user(user_sid, group_id, "bob", None)
    assert len(read(server, "Users")) == 1 and len(members(server, group_id)) == 1


def test_a_name_the_server_holds_for_another_is_a_permanent_error_with_its_detail(server):
    oss = client(server)
    oss.provision_user_group(uuid4(), "Lab")
    with pytest.raises(ScimConflictError, match=r"Group 'lab' not provisioned: SCIM server answered 409 .*already in "
                                                r"use") as refused:
        oss.provision_user_group(uuid4(), "lab")  # displayName is unique on this server, case-insensitively
    assert isinstance(refused.value, PermanentError)
    assert len(read(server, "Groups")) == 1


def test_a_change_between_our_read_and_our_write_is_412_and_the_retry_applies_over_it(server):
    sid = uuid4()
    client(server).provision_user_group(sid, "Lab")
    behind_our_back = client(server)

    def change_it_first(request):
        if request.method == "PATCH" and not behind_our_back.scim.client.headers.get("x-done"):
            behind_our_back.scim.client.headers["x-done"] = "1"
            behind_our_back.rename_user_group(sid, "Renamed elsewhere")

    oss = client(server)
    oss.scim.client.event_hooks["request"].append(change_it_first)
    with pytest.raises(ScimChangedError, match="412") as changed:
        oss.rename_user_group(sid, "Lab 2")
    assert isinstance(changed.value, TransientError)  # retried: the next try reads the new version
    assert read(server, "Groups", sid)[0]["displayName"] == "Renamed elsewhere"  # not overwritten blindly
    assert oss.rename_user_group(sid, "Lab 2") is True
    assert read(server, "Groups", sid)[0]["displayName"] == "Lab 2"


def test_a_server_away_is_transient_and_a_restart_keeps_its_resources(server):
    oss, sid = client(server), uuid4()
    group_id = oss.provision_user_group(sid, "Lab")
    server.stop()
    with pytest.raises(TransientError, match=f"SCIM server {server.url} did not answer GET /Groups: ConnectError"):
        oss.read_user_group(sid)
    server.start()
    assert oss.read_user_group(sid) == {"group_id": group_id, "group_name": "Lab"}
    assert oss.provision_user_group(sid, "Lab") == group_id


def test_a_missing_resource_is_not_found_and_a_user_needs_its_group(server):
    oss = client(server)
    with pytest.raises(NotFoundError, match="holds no group for subscription .*nothing to rename"):
        oss.rename_user_group(uuid4(), "x")
    with pytest.raises(NotFoundError, match="holds no user for subscription"):
        oss.update_user(uuid4(), "x", None)
    with pytest.raises(NotFoundError, match="not added to group nope: the SCIM server holds no such group"):
        oss.provision_user(uuid4(), "nope", "carol", None)


def test_a_bearer_token_from_the_connection(tmp_path):
    server = scim_server(tmp_path, "--bearer-token", "s3cret")
    try:
        assert client(server, password="s3cret").read_user_group(uuid4()) is None
        with pytest.raises(PermanentError, match="answered 401"):
            client(server, password="wrong").read_user_group(uuid4())
        with pytest.raises(PermanentError, match="answered 401"):
            client(server).read_user_group(uuid4())
    finally:
        server.stop()


def test_the_connection_says_where_and_how(tmp_path):
    (tmp_path / "ca.pem").write_text("a CA bundle")
    oss = client(host="idm.example.org", port=8443, extra={"base_path": "scim/v2", "verify": str(tmp_path / "ca.pem"),
                                                           "timeout": 3})
    assert oss.base_url == "https://idm.example.org:8443/scim/v2"
    assert oss._http["verify"] == str(tmp_path / "ca.pem") and oss._http["timeout"] == 3
    assert oss._http["headers"] == {}
    assert client(host="idm", schema="http", login="u", password="p")._http["auth"] == ("u", "p")
    https = client(host="https://idm:9/scim/", password="t", extra={"base_path": "/v2/"})
    assert https.base_url == "https://idm:9/scim/v2" and https._http["headers"] == {"Authorization": "Bearer t"}
    assert client(host="idm").base_url == "https://idm"
    assert client(host="idm", extra={"timeout": 3}).scim.client.timeout == httpx.Timeout(3)  # the client httpx gets
    with pytest.raises(ScimConnectionError, match="has no host"):
        client()
    with pytest.raises(ScimConnectionError, match="bad extra: timeout: Input should be greater than 0; basepath: "
                                                  "Extra inputs"):
        client(host="idm", extra={"timeout": -1, "basepath": "/v2"})
    with pytest.raises(ScimConnectionError, match="bad host 'ftp://idm': give a name or an http"):
        client(host="ftp://idm")
    with pytest.raises(ScimConnectionError, match="bad extra.verify: no such file '/nowhere/ca.pem' on this machine"):
        client(host="idm", extra={"verify": "/nowhere/ca.pem"})
    with pytest.raises(ScimConnectionError, match="bad extra.cert: no such file '/nowhere/key.pem'"):
        client(host="idm", extra={"cert": [str(tmp_path / "ca.pem"), "/nowhere/key.pem"]})


def test_a_task_that_never_calls_the_scim_server_does_not_import_its_library():
    code = ("import json, sys; from usergroup.ossbss import Connection, StorePlace, client_for; "
            "oss = client_for(Connection(conn_id='c', conn_type='usergroup_scim', host='idm'), StorePlace(None, 'u')); "
            "assert not [m for m in sys.modules if m.startswith(('scim2', 'httpx'))], 'imported'; "
            "oss.base_url; assert 'scim2_client' in sys.modules")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).returncode == 0


def test_a_batch_is_found_by_its_external_ids_and_created_by_bulk_requests(server):
    oss, behind = client(server), client(server)
    groups = {uuid4(): f"Batch {n}" for n in range(120)}
    first = list(groups)
    existing = oss.provision_user_group(first[0], groups[first[0]])  # a retry's: found, not created again
    taken = [behind.provision_user_group(uuid4(), groups[sid].upper()) for sid in first[1:4]]  # by another client
    assert len(taken) == 3
    answers = oss.provision_user_groups(groups)
    assert answers[first[0]] == existing
    for sid in first[1:4]:
        assert isinstance(answers[sid], ScimConflictError) and "to its Bulk operation" in str(answers[sid])
    on_server = {g["externalId"]: g for g in read(server, "Groups") if g.get("externalId") in map(str, groups)}
    assert len(on_server) == 117 and all(on_server[str(sid)]["id"] == answers[sid] for sid in first[4:])
    assert all(on_server[str(sid)]["displayName"] == groups[sid] for sid in first[4:])
    again = oss.provision_user_groups(groups)  # run twice: the same ids, nothing created twice
    assert {sid: again[sid] for sid in first[4:]} == {sid: answers[sid] for sid in first[4:]}
    assert len(read(server, "Groups")) == 120
    log = server.log.read_text()
    # one Bulk request a call (the second only for the 3 refused again); the other POSTs are the single calls'
    assert log.count("POST /v2/Bulk") == 2 and log.count("POST /v2/Groups ") == 4


def test_a_server_without_bulk_gets_one_post_a_group(tmp_path):
    server = scim_server(tmp_path, "--no-bulk")
    try:
        groups = {uuid4(): f"Single {n}" for n in range(5)}
        answers = client(server).provision_user_groups(groups)
        assert {g["externalId"]: g["id"] for g in read(server, "Groups")} == {str(k): v for k, v in answers.items()}
        assert "POST /v2/Bulk" not in server.log.read_text()
    finally:
        server.stop()


def test_a_batch_larger_than_the_servers_bulk_payload_is_split(server):
    oss = client(server)
    groups = {uuid4(): f"{n:04} " + "\U0001d50a" * 250 for n in range(1000)}  # ~1.3 MB of Bulk JSON
    with pytest.raises(PermanentError, match="answered 413 .*maxPayloadSize"):  # in one request: refused
        oss.client._bulk_create(groups)
    answers = oss.provision_user_groups(groups)
    assert all(isinstance(answer, str) for answer in answers.values()) and len(read(server, "Groups")) == 1000
    assert server.log.read_text().count("POST /v2/Bulk") > 2


def test_a_filters_value_is_a_scim_string_whatever_it_holds():
    from usergroup.ossbss.scim.client import eq

    assert eq("members.value", 'a"b\\c') == 'members.value eq "a\\"b\\\\c"'


def test_a_retried_batch_finds_every_group_on_a_server_that_pages_its_searches_small(tmp_path):
    server = scim_server(tmp_path, "--max-results", "20")
    try:
        oss, groups = client(server), {uuid4(): f"Paged {n}" for n in range(50)}
        first = oss.provision_user_groups(groups)
        assert client(server).provision_user_groups(groups) == first  # the retry: all 50 found, 20 a page
        assert len(read(server, "Groups")) == 50 and server.log.read_text().count("POST /v2/Bulk") == 1
    finally:
        server.stop()


def test_a_user_the_server_refuses_is_named_as_a_user(server):
    oss = client(server)
    group_id = oss.provision_user_group(uuid4(), "Lab")
    oss.provision_user(uuid4(), group_id, "alice", None)
    with pytest.raises(ScimConflictError, match="^User 'alice' not provisioned: SCIM server answered 409 to POST"):
        oss.provision_user(uuid4(), group_id, "alice", None)  # userName is unique on the whole server


def test_the_journal_survives_a_torn_last_write_and_names_a_bad_line(tmp_path):
    server = scim_server(tmp_path)
    group_id = client(server).provision_user_group(uuid4(), "Kept")
    server.stop(signal.SIGKILL)
    with server.journal.open("a") as journal:
        journal.write('{"type": "Group", "id": "abc", "reso')  # a crash of the machine mid-write
    server.start()
    assert [g["id"] for g in read(server, "Groups")] == [group_id]
    assert "ends in a torn write (line 2), left out" in server.log.read_text()
    server.stop()
    server.journal.write_text('not json\n' + server.journal.read_text())
    with pytest.raises(RuntimeError, match="line 1 is not a journal entry .*repair or remove that line"):
        server.start(timeout=10)
