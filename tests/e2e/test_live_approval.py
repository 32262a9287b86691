"""The input step on a live stack: a User external's create waits in Airflow's `awaiting_input`, answered over
orchestrator-core's API, Airflow's own Required Actions API and the command; at once by many; or never (the
scheduler's timeout)."""

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from helpers import USER_EXTERNAL, USER_GROUP, oss_for
from live import Client, hitl_path, parked

pytestmark = [pytest.mark.live, pytest.mark.xdist_group("live")]

USERGROUP = Path(sys.executable).parent / "usergroup"


@pytest.fixture(scope="module")
def store(live_store):
    return live_store[1]


@pytest.fixture(scope="module")
def admin(live):
    return Client(live, "admin")


@pytest.fixture(scope="module")
def lab(admin) -> str:
    pid = admin.start("create_user_group", {"product": USER_GROUP}, {"group_name": "Approval Live Lab"})
    return admin.wait(pid)["subscriptions"][0]["subscription_id"]


def waiting(admin, lab: str, username: str) -> dict:
    pid = admin.start("create_user", {"product": USER_EXTERNAL}, {"user_group_ids": [lab], "username": username})
    process = admin.wait(pid, until=("suspended", "failed", "aborted", "completed"))
    assert process["last_status"] == "suspended", process
    return process




def test_answered_over_orchestrator_cores_api_with_the_forms_rules(live, admin, store, lab):
    process = waiting(admin, lab, "eve")
    request = parked(live, process)
    assert request["subject"] == "Approve the external user" and request["options"] == ["Approve", "Reject"]
    assert "eve" in request["body"] and set(request["params"]) == {"note", "reason"}
    form = process["form"]
    assert form["title"] == "Approve the external user" and form["properties"]["decision"]["enum"] == \
        ["Approve", "Reject"]
    assert [s["status"] for s in process["steps"] if s["name"] == "approve_user"] == ["suspended"]

    pid = process["process_id"]
    assert admin("PUT", f"/processes/{pid}/resume", json=[]).json()["form"]["title"] == form["title"]
    assert admin("PUT", f"/processes/{pid}/resume", json=[]).status_code == 510
    bad = admin("PUT", f"/processes/{pid}/resume", json=[{"decision": "Reject", "reason": "\u200b"}])
    assert bad.status_code == 400 and bad.json()["validation_errors"][0]["loc"] == ["reason"]
    assert admin("PUT", f"/processes/{pid}/resume", json=[{"decision": "Approve", "extra": 1}]).status_code == 400
    viewer = Client(live, "viewer")
    assert viewer("PUT", f"/processes/{pid}/resume", json=[{"decision": "Approve"}]).status_code == 403
    assert admin("GET", f"/processes/{pid}").json()["last_status"] == "suspended"  # nothing of that counted

    assert admin("PUT", f"/processes/{pid}/resume", json=[{"decision": "Approve", "note": "partner"}]).status_code \
        == 204
    done = admin.wait(pid)
    assert done["last_status"] == "completed", done
    (step,) = [s for s in done["steps"] if s["name"] == "approve_user"]
    assert "answered by admin at" in step["note"] and "Approve (note='partner')" in step["note"]
    again = admin("PUT", f"/processes/{pid}/resume", json=[{"decision": "Reject", "reason": "late"}])
    assert again.status_code == 409 and "is completed" in again.json()["detail"]
    user = done["subscriptions"][0]
    assert [c["action"] for c in oss_for(store).changes(user["subscription_id"])] == ["provision_user"]


def test_airflows_required_actions_api_rejects_and_its_unchecked_answer_is_asked_again(live, admin, store, lab):
    process = waiting(admin, lab, "mallory")
    parked(live, process)
    unchecked = live.api("PATCH", hitl_path(process), json={"chosen_options": ["Reject"],
                                                            "params_input": {"note": "", "reason": ""}})
    assert unchecked.status_code == 200  # Airflow takes it: the step refuses it and asks again
    pid, deadline = process["process_id"], time.monotonic() + 60
    while not (notes := [s.get("note", "") for s in admin("GET", f"/processes/{pid}").json()["steps"]
                         if "refused" in s.get("note", "")]):
        assert time.monotonic() < deadline, "the unchecked answer was not refused"
        time.sleep(0.3)
    assert "refused (reason: Value error, give the reason to reject): asked again" in notes[0]
    parked(live, process)
    rejected = live.api("PATCH", hitl_path(process), json={"chosen_options": ["Reject"],
                                                           "params_input": {"note": "", "reason": "no contract"}})
    assert rejected.status_code == 200
    done = admin.wait(pid)
    assert done["last_status"] == "aborted" and "rejected: no contract" in done["failed_reason"]
    assert live.wait_run(process["run_id"], dag_id="create_user") == "failed"
    sub = done["subscriptions"][0]
    assert sub["status"] == "provisioning" and oss_for(store).changes(sub["subscription_id"]) == []
    assert admin("PUT", f"/processes/{pid}/resume", json=[{"decision": "Approve"}]).status_code == 409


def test_many_answers_at_once_exactly_one_counts(live, admin, store, lab):
    process = waiting(admin, lab, "walter")
    parked(live, process)
    pid = process["process_id"]

    def ours(i):
        body = {"decision": "Approve"} if i % 2 else {"decision": "Reject", "reason": f"no {i}"}
        return "ours", i, admin("PUT", f"/processes/{pid}/resume", json=[body]).status_code

    def airflows(i):
        body = {"chosen_options": ["Approve"], "params_input": {"note": f"airflow {i}", "reason": ""}}
        return "airflow", i, live.api("PATCH", hitl_path(process), json=body).status_code

    with ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(lambda i: (ours if i < 8 else airflows)(i), range(10)))
    taken = [o for o in outcomes if o[2] in (200, 204)]
    assert len(taken) == 1 and all(o[2] == 409 for o in outcomes if o not in taken), outcomes
    who, i, _ = taken[0]
    done = admin.wait(pid)
    approved = who == "airflow" or i % 2 == 1
    assert done["last_status"] == ("completed" if approved else "aborted"), (taken, done)
    (step,) = [s for s in done["steps"] if s["name"] == "approve_user"][-1:]
    assert step["note"].count("\nanswered by") == 1


def test_the_command_answers_and_names_a_wrong_field(live, admin, lab):
    process = waiting(admin, lab, "trent")
    parked(live, process)

    def usergroup(*args):
        return subprocess.run([str(USERGROUP), "processes", *args], env=live.env, capture_output=True, text=True,
                              timeout=120)

    pid = process["process_id"]
    shown = usergroup("show", pid)
    assert "waits for         Approve the external user" in shown.stdout
    bare = usergroup("resume", pid)
    assert bare.returncode == 1 and "decision (Approve|Reject)" in bare.stderr
    wrong = usergroup("resume", pid, "--input", json.dumps({"decision": "Maybe"}))
    assert wrong.returncode == 1 and "decision: Input should be 'Approve' or 'Reject'" in wrong.stderr
    ok = usergroup("resume", pid, "--input", '{"decision": "Approve"}')
    assert ok.returncode == 0, ok.stderr
    done = admin.wait(pid)
    assert done["last_status"] == "completed"
    assert "answered by cli:" in [s for s in done["steps"] if s["name"] == "approve_user"][-1]["note"]


def test_no_answer_in_time_aborts_it_and_the_group_is_refused_while_it_waits(live, admin, lab):
    """The scheduler's own sweep ends the wait (the stack's env: a 3-second timeout)."""
    env = dict(live.env)
    try:
        live.env["USERGROUP_APPROVAL_TIMEOUT"] = "3"
        live.stop("scheduler")
        live.start("scheduler")
        live.wait_healthy()
        process = waiting(admin, lab, "peggy")
        refused = admin("POST", "/processes/terminate_user_group", json=[{"subscription_id": lab}, {}])
        assert refused.status_code == 400 and "peggy" in refused.json()["detail"]
        done = admin.wait(process["process_id"], timeout=120)
        assert done["last_status"] == "aborted" and "no answer to 'Approve the external user' by" in \
            done["failed_reason"]
    finally:
        live.restore(env)
