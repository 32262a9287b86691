"""The input step through Airflow (`dag.test()`): a User external's create waits, suspended, for an operator's
answer, given through the operations every interface calls (and through Airflow's own answer path)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import USER_EXTERNAL, USER_INTERNAL, create, oss_for
from usergroup.airflow.answers import SETTLE
from usergroup.interfaces.operations import AirflowRuns, Conflict, Invalid, OperationError, Operations

pytestmark = pytest.mark.slow


def suspended(store, timeout: float = 60) -> dict:
    """The process that waits for an answer, once its task waits in Airflow (awaiting_input)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with store.transaction() as repo:
            found = repo.list_processes(status="suspended")
        for p in found:
            with create_session() as session:
                if session.query(TaskInstance.state).filter_by(dag_id=p["dag_id"], run_id=p["run_id"],
                                                               task_id=p["last_step"]).scalar() == "awaiting_input":
                    time.sleep(SETTLE.total_seconds() + 0.2)  # it takes an answer once Airflow has settled it
                    return p
        time.sleep(0.2)
    raise AssertionError("no process came to wait")


def answering(store, *then) -> tuple[threading.Thread, list]:
    """A thread that, once the process waits, calls each of `then` with (operations, process); what they return or
    raise is in the list."""
    results = []

    def go():
        ops = Operations(store, AirflowRuns())
        try:
            process = suspended(store)
            for call in then:
                try:
                    results.append(call(ops, process))
                except OperationError as exc:
                    results.append(exc)
        except Exception as exc:  # noqa: BLE001 - the test reads it; the run is stopped, not left waiting
            results.append(exc)
            with store.transaction() as repo:
                for p in repo.list_processes(status="suspended"):
                    ops.abort(p["process_id"], f"the test failed: {exc!r}")

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread, results


def answer(fields: dict, user: str = "ops"):
    return lambda ops, p: ops.resume(p["process_id"], pages=[fields], user=user)


def the_user(store, gid: str):
    with store.transaction() as repo:
        (user,) = [s for s in repo.list_subscriptions() if s.product.product_type == "User"
                   and str(s.user.group.owner_subscription_id) == gid]
        (process,) = repo.processes_of(user.subscription_id)[:1]
        return user, process, {s["task_id"]: s for s in repo.steps_of(process["process_id"])}


def test_approved_the_user_is_provisioned_and_the_trail_says_who(dag_test, store):
    gid = create(store, "Approval Lab")["subscription_id"]
    thread, results = answering(store, answer({"decision": "Approve", "note": "known partner"}, user="alice"))
    state, out = dag_test("create_user", product=USER_EXTERNAL, user_group_id=gid, username="eve")
    thread.join(10)
    assert state == "success", out[-3000:]
    assert results == [None]
    user, process, steps = the_user(store, gid)
    assert (user.status, user.insync, process["status"]) == ("active", True, "completed")
    step = steps["approve_user"]
    assert step["status"] == "success" and step["state"]["decision"] == "Approve"
    assert "answered by alice at " in step["note"] and "Approve (note='known partner')" in step["note"]
    assert [c["action"] for c in oss_for(store).changes(user.subscription_id)] == ["provision_user"]


def test_rejected_the_process_is_aborted_and_nothing_provisioned(dag_test, store):
    gid = create(store, "Reject Lab")["subscription_id"]
    thread, results = answering(store, answer({"decision": "Reject", "reason": "no contract"}))
    state, _ = dag_test("create_user", product=USER_EXTERNAL, user_group_id=gid, username="mallory")
    thread.join(10)
    assert state == "failed" and results == [None]
    user, process, steps = the_user(store, gid)
    assert process["status"] == "aborted" and "rejected: no contract" in process["failed_reason"]
    assert user.status == "provisioning" and user.user.user_id is None
    assert oss_for(store).changes(user.subscription_id) == []
    assert "provision_user" not in steps


def test_a_bad_answer_is_refused_naming_the_field_and_a_second_answer_conflicts(dag_test, store):
    gid = create(store, "Careful Lab")["subscription_id"]
    thread, results = answering(
        store,
        answer({"decision": "Reject"}),  # no reason
        answer({"decision": "Maybe"}),
        lambda ops, p: ops.resume(p["process_id"], pages=None),  # no answer: the form
        answer({"decision": "Approve"}),
        answer({"decision": "Reject", "reason": "too late"}))
    state, out = dag_test("create_user", product=USER_EXTERNAL, user_group_id=gid, username="trent")
    thread.join(10)
    assert state == "success", out[-3000:]
    no_reason, maybe, form, approved, late = results
    assert isinstance(no_reason, Invalid) and no_reason.status == 400 and "reason" in no_reason.reason
    assert no_reason.body["validation_errors"][0]["loc"] == ["reason"]
    assert isinstance(maybe, Invalid) and "decision" in maybe.reason
    assert isinstance(form, Invalid) and form.status == 510
    assert form.body["form"]["title"] == "Approve the external user"
    assert approved is None
    assert isinstance(late, Conflict) and late.status == 409
    assert the_user(store, gid)[0].status == "active"


def test_two_answers_at_once_exactly_one_counts(dag_test, store):
    gid = create(store, "Race Lab")["subscription_id"]

    def both(ops, p):
        with ThreadPoolExecutor(2) as pool:
            calls = [pool.submit(answer(f, user=who), ops, p) for who, f in
                     (("alice", {"decision": "Approve"}), ("bob", {"decision": "Reject", "reason": "no"}))]
            return [_outcome(c) for c in calls]

    thread, results = answering(store, both)
    state, _ = dag_test("create_user", product=USER_EXTERNAL, user_group_id=gid, username="walter")
    thread.join(10)
    (outcomes,) = results
    assert sorted(map(str, outcomes)) == ["409", "ok"], outcomes
    winner = ("alice", "success") if outcomes[0] == "ok" else ("bob", "failed")
    user, process, steps = the_user(store, gid)
    assert state == winner[1]
    assert process["status"] == ("completed" if winner[0] == "alice" else "aborted")
    assert f"by {winner[0]} at" in steps["approve_user"]["note"]


def _outcome(call) -> str:
    try:
        call.result()
        return "ok"
    except OperationError as exc:
        return str(exc.status)


def test_an_answer_airflow_takes_unchecked_is_refused_by_the_step_and_asked_again(dag_test, store):
    """Airflow's Required Actions page and REST API do not check the fields: the step does, the trail says why,
    and it asks again."""
    from usergroup.airflow.answers import respond

    gid = create(store, "Unchecked Lab")["subscription_id"]

    def airflow_answer(fields: dict, chosen: str):
        def call(ops, p):
            time.sleep(0.5)
            with store.transaction() as repo:  # it waits again once refused
                p = repo.get_process(p["process_id"])
            deadline = time.monotonic() + 30
            while True:
                try:
                    return respond(p["dag_id"], p["run_id"], "approve_user", -1, [chosen], fields, "9", "carol")
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)
        return call

    thread, results = answering(store, airflow_answer({"note": "", "reason": ""}, "Reject"),
                                airflow_answer({"note": "ok now", "reason": ""}, "Approve"))
    state, out = dag_test("create_user", product=USER_EXTERNAL, user_group_id=gid, username="oscar")
    thread.join(10)
    assert state == "success", out[-3000:]
    assert results == [None, None]
    note = the_user(store, gid)[2]["approve_user"]["note"]
    assert "the answer of carol" in note and "refused (reason: Value error, give the reason to reject)" in note
    assert "answered by carol" in note and "Approve (note='ok now')" in note


def test_no_answer_in_time_aborts_the_process(dag_test, store, knobs):
    """dag.test() does not sweep timeouts as the scheduler does: the test calls the scheduler's own sweep."""
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner

    knobs(USERGROUP_APPROVAL_TIMEOUT="1")
    gid = create(store, "Slow Lab")["subscription_id"]

    def sweep(ops, p):
        runner, deadline = SchedulerJobRunner(job=Job()), time.monotonic() + 30
        while ops._process(p["process_id"])["status"] == "suspended" and time.monotonic() < deadline:
            time.sleep(0.5)
            runner.check_awaiting_input_timeouts()

    thread, results = answering(store, sweep)
    state, _ = dag_test("create_user", product=USER_EXTERNAL, user_group_id=gid, username="peggy")
    thread.join(10)
    assert state == "failed" and results == [None]
    user, process, steps = the_user(store, gid)
    assert process["status"] == "aborted" and "no answer to 'Approve the external user' by" in process["failed_reason"]
    assert oss_for(store).changes(user.subscription_id) == []


def test_its_group_cannot_be_terminated_while_it_waits_and_internal_users_are_not_asked(dag_test, run, store):
    gid = create(store, "Waiting Lab")["subscription_id"]
    terminate = lambda ops, p: ops.start("terminate_user_group", [{"subscription_id": gid}, {}], "ops")  # noqa: E731
    thread, results = answering(store, terminate, answer({"decision": "Reject", "reason": "changed our mind"}))
    state, _ = dag_test("create_user", product=USER_EXTERNAL, user_group_id=gid, username="ivan")
    thread.join(10)
    refused, rejected = results
    assert state == "failed" and rejected is None
    assert isinstance(refused, Invalid) and "User ivan" in refused.reason, refused
    run("create_user", product=USER_INTERNAL, user_group_id=gid, username="judy")
    with store.transaction() as repo:
        (judy,) = [s for s in repo.list_subscriptions() if s.product.product_type == "User"
                   and s.user.username == "judy"]
        steps = {s["task_id"]: s for s in repo.steps_of(repo.processes_of(judy.subscription_id)[0]["process_id"])}
    assert steps["approve_user"]["note"] == "not asked" and judy.status == "active"

