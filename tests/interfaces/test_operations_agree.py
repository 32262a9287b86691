"""The interfaces agree: each operation through the API, the Subscriptions page and the CLI (in-process, on both
databases) has the same outcome and the same reason, the one usergroup.interfaces.operations decides. Airflow is
a fake `Runs` (the live tests have the real one)."""

import html
import json
from uuid import UUID, uuid4

import pytest

from helpers import USER_EXTERNAL, app_client, create, create_user, run_on
from usergroup.domain import ProcessStatus
from usergroup.interfaces import deps, operations
from usergroup.interfaces.cli.main import main
from usergroup.settings import settings
from usergroup.workflows.user_group.modify_user_group import modify_user_group

ORIGIN = {"Origin": "http://testserver"}
UNFINISHED = "only an unfinished process can be aborted"


class FakeRuns:
    def customer(self) -> str:
        return str(settings().default_customer_id)

    def trigger(self, dag_id, run_id, conf, user) -> None:
        pytest.fail("a refused start must not trigger a run")

    def abort(self, store, process, reason):
        with store.transaction() as repo:
            repo.abort_process(process["process_id"], reason)
        return f"its run {process['run_id']} is marked failed", None

    def clear_failed(self, dag_id, run_id, map_index) -> None:
        return None

    def respond(self, process, answer, user) -> None:
        return None


def half(store) -> str:
    return create(store, f"Half {uuid4().hex[:6]}", upto=2)["process_id"]


def aborted(store) -> str:
    pid = half(store)
    with store.transaction() as repo:
        repo.abort_process(UUID(pid), "stopped")
    return pid


def completed(store) -> str:
    return create(store, f"Done {uuid4().hex[:6]}")["process_id"]


def failed(store) -> str:
    pid = half(store)
    with store.transaction() as repo:
        repo.fail_process(UUID(pid), ProcessStatus.FAILED, last_step="x", failed_reason="boom")
    return pid


def held(store) -> str:
    sid = create(store, f"Held {uuid4().hex[:6]}")["subscription"]["subscription_id"]
    run_on(store, modify_user_group, sid, upto=2, group_name="Other")  # past unsync: it holds it
    return sid


def in_use(store) -> str:
    sid = create(store, f"Used {uuid4().hex[:6]}")["subscription"]["subscription_id"]
    create_user(store, sid, f"u{uuid4().hex[:6]}")
    return sid


def suspended(store) -> str:
    """A User external's create, waiting at approve_user."""
    from usergroup.engine.runner import TaskTry
    from usergroup.engine.suspend import ask
    from usergroup.workflows.user.create_user import create_user as workflow

    i = workflow.task_ids.index("approve_user")
    state = create_user(store, in_use(store), f"w{uuid4().hex[:6]}", upto=i, product=USER_EXTERNAL)
    assert ask(TaskTry(workflow.steps[i], "approve_user", "CREATE", 1), state, store=store, oss=None) is None
    return state["process_id"]


# case: (set up -> id, operation, extra form fields, expected status (None: done), a text the reason holds)
CASES = {
    "abort running": (half, "abort", {}, None, ""),
    "abort aborted": (aborted, "abort", {}, 409, f"is aborted: {UNFINISHED}"),
    "abort completed": (completed, "abort", {}, 409, f"is completed: {UNFINISHED}"),
    "abort unknown": (lambda s: str(uuid4()), "abort", {}, 404, "no process "),
    "resume failed": (failed, "resume", {}, None, ""),
    "resume completed": (completed, "resume", {}, 409, "is completed: only a failed process can be resumed"),
    "answer suspended": (suspended, "answer", {"decision": "Approve", "note": "ok"}, None, ""),
    "answer bad": (suspended, "answer", {"decision": "Reject"}, 400, "reason: Value error, give the reason to reject"),
    "answer completed": (completed, "answer", {"decision": "Approve"}, 409, "is completed: it waits for no answer"),
    "set in sync held": (held, "set_in_sync", {}, 409, "stays out of sync"),
    "set in sync unknown": (lambda s: str(uuid4()), "set_in_sync", {}, 404, "no subscription "),
    "terminate in use": (in_use, "terminate_user_group", {}, 400, "used in other subscriptions"),
    "start refused": (held, "modify_user_group", {"group_name": "Again"}, 400, "modify_user_group"),
}


def decided(store, op: str, target: str, fields: dict) -> tuple[int | None, str]:
    """What the operations layer decides, called directly (in a rolled-back copy where it would change things)."""
    ops = operations.Operations(store, FakeRuns())
    try:
        if op == "abort":
            ops.abort(target, "x")
        elif op == "resume":
            ops.resume(target)
        elif op == "answer":
            ops.resume(target, pages=[fields], user="tester")
        elif op == "set_in_sync":
            ops.set_in_sync(target)
        else:
            ops.start(op, [{"subscription_id": target}, fields], "tester")
    except operations.OperationError as exc:
        return exc.status, exc.reason
    return None, ""


def via_api(client, op, target, fields):
    if op in ("abort", "resume"):
        answer = client.put(f"/api/processes/{target}/{op}", headers=ORIGIN)
    elif op == "answer":
        answer = client.put(f"/api/processes/{target}/resume", json=[fields], headers=ORIGIN)
    elif op == "set_in_sync":
        answer = client.put(f"/api/subscriptions/{target}/set_in_sync", headers=ORIGIN)
    else:
        answer = client.post(f"/api/processes/{op}", json=[{"subscription_id": target}, fields], headers=ORIGIN)
    if answer.status_code < 300:
        return None, ""
    return answer.status_code, answer.json()["detail"]


def via_page(client, op, target, fields, store):
    some = create(store, f"Token {uuid4().hex[:6]}")["subscription"]["subscription_id"]
    token = client.get(f"/ui/subscriptions/{some}").text.split('name="csrf_token" value="')[1].split('"')[0]
    if op in ("abort", "resume", "answer"):
        path = f"/ui/processes/{target}/{op}"
    elif op == "set_in_sync":
        path = f"/ui/subscriptions/{target}/set_in_sync"
    else:
        path = f"/ui/subscriptions/{target}/start/{op}"
    answer = client.post(path, data={"csrf_token": token, **fields}, headers=ORIGIN, follow_redirects=False)
    if answer.status_code == 303:
        return None, ""
    return answer.status_code, html.unescape(answer.text)


def via_cli(op, target, fields, capsys):
    argv = {"abort": ["processes", "abort", target], "resume": ["processes", "resume", target],
            "answer": ["processes", "resume", target, "--input", json.dumps(fields)],
            "set_in_sync": ["subscriptions", "set-in-sync", target]}.get(op)
    argv = argv or ["processes", "start", op, f"subscription_id={target}", *(f"{k}={v}" for k, v in fields.items())]
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    return (None, "") if code == 0 else (code, err)


@pytest.mark.parametrize("interface", ["api", "page", "cli"])
@pytest.mark.parametrize("case", list(CASES))
def test_the_interfaces_agree(case, interface, store, monkeypatch, capsys):
    monkeypatch.setattr(operations, "AirflowRuns", FakeRuns)
    setup, op, fields, status, holds = CASES[case]
    target = setup(store)
    expected = decided(store, op, target, fields) if status else (None, "")
    assert expected[0] == status and holds in expected[1]  # the decision, once
    if status is None:  # done: decided() would have done it; a fresh one for the interface
        target = setup(store)
    try:
        if interface == "cli":
            got, said = via_cli(op, target, fields, capsys)
            assert (got, said) == ((None, "") if status is None else (1, f"usergroup: {expected[1]}\n"))
            return
        client = app_client("admin", monkeypatch)
        if interface == "api":
            assert via_api(client, op, target, fields) == expected
        else:
            got, said = via_page(client, op, target, fields, store)
            assert got == status and expected[1] in said
    finally:
        deps.store.cache_clear()
    if op == "abort" and status is None:
        with store.transaction() as repo:
            assert repo.get_process(target)["status"] == "aborted"
    if op in ("resume", "answer") and status is None:
        with store.transaction() as repo:
            assert repo.get_process(target)["status"] == "running"
