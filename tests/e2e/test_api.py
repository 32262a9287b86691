"""orchestrator-core's REST API, served by the plugin in Airflow's api-server, against a live stack over HTTP with
real tokens (an admin and a viewer): each endpoint, its errors, workflows started by POST, resume and abort."""


import pytest
import requests

from helpers import USER_GROUP, USER_INTERNAL
from live import Client, oss_faults

pytestmark = [pytest.mark.live, pytest.mark.xdist_group("live")]  # live: not in test-fast; one worker


@pytest.fixture(scope="module")
def admin(live):
    return Client(live, "admin")


def test_every_route_needs_a_login_and_a_viewer_acts_on_nothing(live, admin):
    anonymous, viewer = Client(live, None), Client(live, "viewer")
    for path in ("/products/", f"/products/{USER_GROUP}", "/processes/", "/subscriptions/search"):
        assert anonymous("GET", path).status_code == 401
        assert viewer("GET", path).status_code == 200
    assert anonymous("POST", "/processes/create_user_group", json=[]).status_code == 401
    forged = requests.get(f"{admin.base}/api/products/", headers={"Authorization": "Bearer forged"}, timeout=10)
    assert forged.status_code == 403
    refused = viewer("POST", "/processes/create_user_group", json=[{"product": USER_GROUP}, {"group_name": "V"}])
    assert refused.status_code == 403 and "may not run create_user_group" in refused.json()["detail"]
    pid = admin.start("create_user_group", {"product": USER_GROUP}, {"group_name": "Viewer Sees"})
    assert viewer("GET", f"/processes/{pid}").status_code == 200
    for action in ("resume", "abort"):
        assert viewer("PUT", f"/processes/{pid}/{action}", json=[{}]).status_code == 403


def test_the_contract_is_served_to_a_login_only(live, admin):
    """The OpenAPI and Swagger UI through Airflow's api-server: 401 without a login, the 11 operations with one."""
    anonymous = Client(live, None)
    for path in ("/openapi.json", "/docs", "/docs/swagger-ui-bundle.js"):
        assert anonymous("GET", path).status_code == 401
    schema = admin("GET", "/openapi.json").json()
    assert schema["servers"] == [{"url": "/orchestrator"}]
    assert sum(len(operations) for operations in schema["paths"].values()) == 11
    assert schema["paths"]["/api/processes/{process_id}/abort"]["put"]["responses"]["409"]["content"]
    docs = admin("GET", "/docs")
    assert docs.status_code == 200 and "/orchestrator/api/openapi.json" in docs.text
    assert admin("GET", "/docs/swagger-ui.css").status_code == 200
    allow = admin("OPTIONS", "/processes/00000000-0000-0000-0000-000000000000")
    assert (allow.status_code, allow.headers["Allow"]) == (405, "GET")


def test_products(admin):
    products = admin("GET", "/products/").json()
    assert [(p["name"], p["product_type"], p["fixed_inputs"]) for p in products] == [
        ("User Group", "UserGroup", []), ("User external", "User", [{"name": "affiliation", "value": "external"}]),
        ("User internal", "User", [{"name": "affiliation", "value": "internal"}])]
    assert admin("GET", f"/products/{USER_INTERNAL}").json()["tag"] == "USER"
    assert admin("GET", "/products/3f1b7c52-8e4d-4a6b-9c21-5d7e0f3a9b99").status_code == 404


def test_a_group_and_a_user_through_their_whole_life(admin):
    pid = admin.start("create_user_group", {"product": USER_GROUP}, {"group_name": "API Lab"})
    first = admin("GET", f"/processes/{pid}").json()  # it exists at once
    assert first["workflow_name"] == "create_user_group" and first["last_status"] in ("created", "running",
                                                                                       "completed")
    done = admin.wait(pid)
    assert done["last_status"] == "completed" and done["created_by"] == "manual:admin", done["failed_reason"]
    assert [s["name"] for s in done["steps"]] == ["create_subscription", "store_process_subscription",
                                                  "initialize_subscription", "provision_user_group", "set_status",
                                                  "resync", "done"]
    (group,) = done["subscriptions"]
    gid = group["subscription_id"]
    model = admin("GET", f"/subscriptions/domain-model/{gid}").json()
    assert (model["status"], model["insync"], model["user_group"]["group_name"]) == ("active", True, "API Lab")
    assert model["product"]["name"] == "User Group"

    uid_pid = admin.start("create_user", {"product": USER_INTERNAL},
                          {"user_group_ids": [gid], "username": "api user", "age": 44})
    (user,) = admin.wait(uid_pid)["subscriptions"]
    admin.wait(admin.start("modify_user_group", {"subscription_id": gid}, {"group_name": "API Lab 2"}))
    model = admin("GET", f"/subscriptions/domain-model/{user['subscription_id']}").json()
    assert (model["affiliation"], model["user"]["username"], model["user"]["age"]) == ("internal", "api user", 44)
    assert model["user"]["group"]["group_name"] == "API Lab 2"

    workflows = admin("GET", f"/subscriptions/workflows/{gid}").json()
    assert workflows["terminate"][0]["reason"] == "subscription.no_modify_subscription_in_use_by_others"
    refused = admin("POST", "/processes/terminate_user_group", json=[{"subscription_id": gid}, {}])
    assert refused.status_code == 400 and "can not be terminated as it is used in other subscriptions: " \
        f"subscription {user['subscription_id']} (User api user from group API Lab (internal))" in refused.text
    assert admin.wait(admin.start("terminate_user", {"subscription_id": user["subscription_id"]}, {}))[
        "last_status"] == "completed"
    assert admin.wait(admin.start("terminate_user_group", {"subscription_id": gid}, {}))["last_status"] == \
        "completed"
    assert admin("GET", f"/subscriptions/domain-model/{gid}").json()["status"] == "terminated"

    found = admin("GET", "/subscriptions/search", params={"query": "api lab 2", "sort": "description,asc"}).json()
    assert [s["subscription_id"] for s in found] == [gid, user["subscription_id"]]  # the user: its group's name
    assert [s["description"] for s in found] == ["User Group API Lab 2", "User api user from group API Lab (internal)"]
    listed = admin("GET", "/processes/", params={"filter": "workflowName,create_user", "range": "0,10"})
    assert [p["process_id"] for p in listed.json()] == [uid_pid] and listed.headers["Content-Range"] == \
        "processes 0-1/1"


def test_a_process_started_through_airflows_own_api_shows_here(live, admin):
    response = live.trigger({"group_name": "Triggered Elsewhere"}, dag_id="create_user_group")
    assert response.status_code == 200, response.text
    run_id = response.json()["dag_run_id"]
    assert live.wait_run(run_id, dag_id="create_user_group") == "success"
    (process,) = [p for p in admin("GET", "/processes/", params={"filter": "workflowName,create_user_group"}).json()
                  if p["run_id"] == run_id]
    assert process["last_status"] == "completed" and process["created_by"] == "manual:admin"
    assert admin("GET", f"/processes/{process['process_id']}").json()["current_state"]["group_name"] == \
        "Triggered Elsewhere"


def test_errors_name_what_is_wrong(admin):
    assert admin("POST", "/processes/no_such_workflow", json=[]).status_code == 404
    missing = admin("POST", "/processes/create_user", json=[{"product": USER_INTERNAL}])
    assert missing.status_code == 510 and "username" in missing.json()["form"]["properties"]
    invalid = admin("POST", "/processes/create_user_group", json=[{"product": USER_GROUP}, {"group_name": " x"}])
    assert invalid.status_code == 400
    assert invalid.json()["validation_errors"][0]["loc"] == ["group_name"]
    assert admin("GET", "/processes/0d8f6f3e-6a52-4f61-8b43-54d5b6a0c1a9").status_code == 404
    assert admin("GET", "/subscriptions/domain-model/0d8f6f3e-6a52-4f61-8b43-54d5b6a0c1a9").status_code == 404
    pid = admin.start("create_user_group", {"product": USER_GROUP}, {"group_name": "Finished Lab"})
    assert admin.wait(pid)["last_status"] == "completed"
    assert admin("PUT", f"/processes/{pid}/resume", json=[{}]).status_code == 409
    assert admin("PUT", f"/processes/{pid}/abort").status_code == 409
    assert admin("GET", "/processes/", params={"filter": "nonsense,1"}).status_code == 400


def test_the_first_tasks_refusals_are_400_and_start_nothing(admin):
    gid = admin.wait(admin.start("create_user_group", {"product": USER_GROUP}, {"group_name": "Checked Lab"}))[
        "subscriptions"][0]["subscription_id"]
    before = len(admin("GET", "/processes/").json())
    cases = [
        ("modify_user_group", [{"subscription_id": "0d8f6f3e-6a52-4f61-8b43-54d5b6a0c1a9"}, {"group_name": "x"}],
         "no subscription"),
        ("terminate_user", [{"subscription_id": gid}, {}], "is a User Group, not a User internal or User external"),
        ("create_user", [{"product": USER_INTERNAL}, {"user_group_ids": ["0d8f6f3e-6a52-4f61-8b43-54d5b6a0c1a9"],
                                                       "username": "u"}], "no UserGroup subscription"),
        ("modify_user_group", [{"subscription_id": gid}, {"group_name": "Checked Lab", "version": 99}],
         "stale data: given version 99"),
    ]
    for workflow, pages, message in cases:
        refused = admin("POST", f"/processes/{workflow}", json=pages)
        assert refused.status_code == 400 and message in refused.json()["detail"], refused.text
    assert len(admin("GET", "/processes/").json()) == before  # no process, no run
    assert admin("GET", "/docs").status_code == 200 and admin("GET", "/openapi.json").status_code == 200  # issue 30


def test_one_name_posted_five_times_at_once_makes_one_group(admin):
    from concurrent.futures import ThreadPoolExecutor

    for round_ in range(2):
        names = [f"{n} {round_}" for n in ("Race Lab", "race lab", "RACE LAB", "Ｒace Lab", "Race\u00a0Lab")]
        with ThreadPoolExecutor(5) as pool:
            pids = list(pool.map(lambda n: admin.start("create_user_group", {"product": USER_GROUP},
                                                       {"group_name": n}), names))
        outcomes = [admin.wait(pid)["last_status"] for pid in pids]
        assert outcomes.count("completed") == 1 and outcomes.count("aborted") == 4, outcomes


def test_resume_and_abort_while_the_ossbss_fails(live, live_store, admin):
    with oss_faults(live_store[1], fail=True):
        resumed = admin.start("create_user_group", {"product": USER_GROUP}, {"group_name": "Outage Resumed"})
        aborted = admin.start("create_user_group", {"product": USER_GROUP}, {"group_name": "Outage Aborted"})
        for pid in (resumed, aborted):
            failed = admin.wait(pid, until=("failed",), timeout=240)
            assert failed["last_status"] == "failed" and failed["last_step"] == "provision_user_group"
            assert live.wait_run(failed["run_id"], timeout=240, dag_id="create_user_group") == "failed"  # retries done
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(5) as pool:  # five clients resume it at once: one does
        codes = list(pool.map(lambda _: admin("PUT", f"/processes/{resumed}/resume", json=[{}]).status_code,
                              range(5)))
    assert sorted(codes) == [204, 409, 409, 409, 409], codes
    assert admin.wait(resumed)["last_status"] == "completed"
    with ThreadPoolExecutor(5) as pool:  # and five abort the other at once: none fails
        codes = list(pool.map(lambda _: admin("PUT", f"/processes/{aborted}/abort").status_code, range(5)))
    assert set(codes) <= {204, 409} and 204 in codes, codes
    gone = admin("GET", f"/processes/{aborted}").json()
    assert gone["last_status"] == "aborted" and "aborted by admin over the API" in gone["failed_reason"]
    assert admin("PUT", f"/processes/{aborted}/abort").status_code == 409
    assert live.run_state(gone["run_id"], dag_id="create_user_group") == "failed"


def test_a_client_written_for_orchestrator_core(live, admin):
    import os
    import subprocess
    import sys

    from helpers import ROOT

    env = {**os.environ, "ORCHESTRATOR_URL": admin.base,
           "ORCHESTRATOR_TOKEN": admin.headers["Authorization"].split()[1]}
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "orchestrator_client.py"), "Example Lab"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[:6] == [
        "create_user_group: completed", "create_user: completed", "modify_user_group: completed",
        "user client user is in group 'Example Lab renamed'", "terminate_user: completed",
        "terminate_user_group: completed"]
    assert result.stdout.count(": terminated") == 2
