"""Faults in modify, terminate and validate: every step crashed after its commit and retried, the OSS/BSS call
made and the commit lost, the OSS/BSS down during deprovision; nothing done twice, the trail shows each try."""

import pytest
from airflow.sdk.exceptions import AirflowFailException
from test_faults import CrashAfterCommit, TaskDied

from helpers import create, oss_for, run_tasks, start_state
from usergroup.airflow.tasks import run_step
from usergroup.ossbss.errors import OssBssError
from usergroup.workflows.user_group.modify_user_group import modify_user_group
from usergroup.workflows.user_group.terminate_user_group import terminate_user_group
from usergroup.workflows.user_group.validate_user_group import validate_user_group

WORKFLOWS = {w.name: w for w in (modify_user_group, terminate_user_group, validate_user_group)}
CASES = [(w.name, task_id) for w in WORKFLOWS.values() for task_id in w.task_ids]
FIELDS = {"modify_user_group": {"group_name": "Renamed Lab"}}
END = {"modify_user_group": ("active", "Renamed Lab"), "terminate_user_group": ("terminated", "Fault Lab"),
       "validate_user_group": ("active", "Fault Lab")}


def run_with_retries(store, workflow, state: dict, oss) -> dict:
    """Run each task as Airflow would: a try that raises TaskDied is retried with the same input state."""
    start = {"workflow_name": workflow.name, "workflow_target": str(workflow.target), "dag_id": workflow.name,
             "run_id": "faults", "created_by": "test"}
    for i, (step, task_id) in enumerate(zip(workflow.steps, workflow.task_ids, strict=True)):
        kw = {"start": start if i == 0 else None, "checks": workflow.checks if i == 0 else (), "task_id": task_id}
        try:
            new = run_step(step, state, store=store, oss=oss, try_number=1, **kw)
        except TaskDied:
            new = run_step(step, state, store=store, oss=oss, try_number=2, **kw)
        state = new
    return state


def begin(store, name: str) -> tuple[str, dict]:
    sid = create(store, "Fault Lab")["subscription_id"]
    workflow = WORKFLOWS[name]
    return sid, start_state(workflow, "faults", subscription_id=sid, version=None, **FIELDS.get(name, {}))


@pytest.mark.parametrize(("name", "crash_in"), CASES)
def test_a_crash_after_each_steps_commit_then_the_retry(store, name, crash_in):
    sid, state = begin(store, name)
    crashing = CrashAfterCommit(store.engine, crash_in)
    done = run_with_retries(crashing, WORKFLOWS[name], state, oss_for(store))
    assert crashing.crashed
    with store.transaction() as repo:
        sub = repo.get_subscription(sid)
        assert (sub.status, sub.user_group.group_name) == END[name] and sub.insync
        assert repo.get_process(done["process_id"])["status"] == "completed"
        trail = [(s["task_id"], s["try_number"], s["status"]) for s in repo.steps_of(done["process_id"])]
    assert (crash_in, 1, "success") in trail and (crash_in, 2, "replayed") in trail
    assert len(trail) == len(WORKFLOWS[name].steps) + 1
    actions = [c["action"] for c in oss_for(store).changes(sid)]
    assert actions == {"modify_user_group": ["provision", "rename"], "terminate_user_group": ["provision", "remove"],
                       "validate_user_group": ["provision"]}[name]


@pytest.mark.parametrize(("name", "call"), [("modify_user_group", "rename_user_group"),
                                            ("terminate_user_group", "deprovision_user_group")])
def test_the_oss_call_made_then_the_commit_lost(store, monkeypatch, name, call):
    """The OSS/BSS renamed (removed), then the task died before its commit: the retry changes nothing twice."""
    sid, state = begin(store, name)
    oss = oss_for(store)
    real, calls = getattr(oss, call), []

    def call_then_die(*args):
        result = real(*args)
        calls.append(result)
        if len(calls) == 1:
            raise TaskDied("killed between the OSS/BSS answer and the commit")
        return result

    monkeypatch.setattr(oss, call, call_then_die)
    done = run_with_retries(store, WORKFLOWS[name], state, oss)
    assert calls == [True, False]  # done the first time, nothing to do the second
    with store.transaction() as repo:
        assert (repo.get_subscription(sid).status, repo.get_subscription(sid).insync) == (END[name][0], True)
        steps = [(s["task_id"], s["try_number"], s["status"]) for s in repo.steps_of(done["process_id"])]
    own = WORKFLOWS[name].task_ids[2]
    assert (own, 1, "failed") in steps and (own, 2, "success") in steps
    assert len([c for c in oss_for(store).changes(sid) if c["action"] != "provision"]) == 1


def test_the_oss_down_during_deprovision_then_cleared(store, knobs):
    """Every try fails while the OSS/BSS is down: the run fails and the subscription stays out of sync, held by
    it; once the OSS/BSS is back, clearing the task (a new try) terminates it."""
    sid, state = begin(store, "terminate_user_group")
    state = run_tasks(store, terminate_user_group, state, upto=2, run_id="faults")
    knobs(USERGROUP_FAKE_OSS_FAIL="1")
    for try_number in (1, 2, 3):
        with pytest.raises(OssBssError, match="unavailable"):
            run_step(terminate_user_group.steps[2], state, store=store, oss=oss_for(store), try_number=try_number)
    with store.transaction() as repo:
        sub, process = repo.get_subscription(sid), repo.get_process(state["process_id"])
    assert (sub.status, sub.insync, process["status"]) == ("active", False, "failed")
    with pytest.raises(AirflowFailException, match=f"held by process {state['process_id']}"):
        run_tasks(store, validate_user_group, start_state(validate_user_group, "v", subscription_id=sid), upto=1,
                  run_id="v")
    knobs(USERGROUP_FAKE_OSS_FAIL=None)
    state = run_step(terminate_user_group.steps[2], state, store=store, oss=oss_for(store), try_number=4)
    run_tasks(store, terminate_user_group, state, after=3, run_id="faults")
    with store.transaction() as repo:
        sub, process = repo.get_subscription(sid), repo.get_process(state["process_id"])
        tries = [(s["try_number"], s["status"]) for s in repo.steps_of(state["process_id"])
                 if s["task_id"] == "deprovision_user_group"]
    assert (sub.status, sub.insync, process["status"]) == ("terminated", True, "completed")
    assert tries == [(1, "failed"), (2, "failed"), (3, "failed"), (4, "success")]
    assert oss_for(store).read_user_group(sid) is None
