"""The adapter: merge the state, commit the subscription with the step row, nothing on failure, no repeats."""

import threading
from types import SimpleNamespace
from uuid import UUID, uuid4

import pytest
from airflow.sdk.exceptions import AirflowFailException

from helpers import oss_for
from usergroup.airflow.tasks import run_step, step_task
from usergroup.domain import USER_GROUP_PRODUCT, SubscriptionLifecycle, Target, UserGroupInactive
from usergroup.engine.generic_steps import done, resync, set_status, store_process_subscription
from usergroup.engine.process_id import process_id_for
from usergroup.engine.step import StepContext, step
from usergroup.engine.workflow import Workflow
from usergroup.ossbss.errors import OssBssError
from usergroup.settings import settings
from usergroup.store import tables
from usergroup.store.errors import OutOfSyncError
from usergroup.workflows.user_group.create_user_group import (
    CreateUserGroupForm,
    create_subscription,
    create_user_group,
    initialize_subscription,
    provision_user_group,
)

START = {"workflow_name": "create_user_group", "workflow_target": "CREATE", "dag_id": "create_user_group",
         "run_id": "manual__1", "created_by": "manual:tester"}


def tasks_of(workflow):
    """The workflow's tasks as its DAG builds them: one per step, the first one opening the process."""
    return [step_task(s, workflow, task_id=t, first=i == 0)
            for i, (s, t) in enumerate(zip(workflow.steps, workflow.task_ids, strict=True))]


def initial_state(name="Research Lab") -> dict:
    return {"process_id": str(uuid4()), "workflow_name": "create_user_group", "workflow_target": "CREATE",
            "product_id": str(USER_GROUP_PRODUCT.product_id), "customer_id": str(uuid4()), "group_name": name}


def run(step_, state, store, try_number=1, start=None, **kw):
    return run_step(step_, state, store=store, oss=oss_for(store), try_number=try_number, start=start, **kw)


def test_merges_commits_and_records_the_step(store):
    state = initial_state()
    new = run(create_subscription, state, store, start={**START, "run_id": state["process_id"]})
    assert new["group_name"] == "Research Lab" and new["subscription_id"]
    assert new["subscription"]["version"] == 1  # saved: the state carries the stored version
    with store.transaction() as repo:
        assert repo.get_subscription(new["subscription_id"]).version == 1
        (row,) = repo.steps_of(state["process_id"])
        assert row["name"] == "create_subscription" and row["status"] == "success" and row["state"] == new
        assert repo.get_process(state["process_id"])["status"] == "running"


def test_a_failing_step_commits_nothing_and_records_the_failure(store):
    state = run(create_subscription, initial_state(), store, start=START)

    @step("Half-done step")
    def half_done(subscription: UserGroupInactive, ctx: StepContext):
        subscription.note = "half done"
        ctx.store.repo.save_subscription(subscription)  # written behind the chunk's back
        raise OssBssError("the OSS went away")

    with pytest.raises(OssBssError):  # transient: Airflow retries it
        run(half_done, state, store)
    with store.transaction() as repo:
        assert repo.get_subscription(state["subscription_id"]).note is None  # the half-done write rolled back
        process = repo.get_process(state["process_id"])
        assert process["status"] == "failed" and process["last_step"] == "half_done"
        assert "OssBssError: the OSS went away" in process["failed_reason"] and "Traceback" in process["traceback"]
        failed = [s for s in repo.steps_of(state["process_id"]) if s["status"] == "failed"]
        assert [s["name"] for s in failed] == ["half_done"] and "the OSS went away" in failed[0]["error"]


def test_the_subscription_is_the_process_s_from_its_first_commit(store):
    """Right after create_subscription (before store_process_subscription), set-in-sync sees the process."""
    state = run(create_subscription, initial_state(), store, start=START)
    with pytest.raises(OutOfSyncError, match=f"process {state['process_id']} \\(create_user_group, running\\)"):
        with store.transaction() as repo:
            repo.set_in_sync(UUID(state["subscription_id"]))
    state = run(store_process_subscription(Target.CREATE), state, store)
    with store.transaction() as repo:
        assert repo.subscriptions_of(state["process_id"]) == [UUID(state["subscription_id"])]  # one link


def test_a_permanent_error_fails_the_task_without_retry(store):
    state = run(create_subscription, initial_state(), store, start=START)
    with pytest.raises(AirflowFailException, match=r"set_status: .*UserGroupBlock\.group_name is required"):
        run(set_status(SubscriptionLifecycle.ACTIVE), state, store)


def test_a_step_that_already_committed_is_not_run_again(store):
    """A crash after the commit and before Airflow recorded success: the retry returns the recorded state."""
    state = run(create_subscription, initial_state(), store, start=START)
    state = run(store_process_subscription(Target.CREATE), state, store)
    after = run(initialize_subscription, state, store, try_number=1)
    again = run(initialize_subscription, state, store, try_number=2)
    assert again == after
    with store.transaction() as repo:
        assert repo.get_subscription(after["subscription_id"]).version == 2
        rows = [s for s in repo.steps_of(state["process_id"]) if s["name"] == "initialize_subscription"]
        assert [(r["try_number"], r["status"]) for r in rows] == [(1, "success"), (2, "replayed")]
        assert rows[1]["note"] == "committed by try 1; not run again" and rows[1]["state"] == after


def test_a_duplicate_at_the_first_step_writes_nothing(store):
    first = initial_state("Research Lab")
    state = run(create_subscription, first, store, start=START)
    for s in (store_process_subscription(Target.CREATE), initialize_subscription):
        state = run(s, state, store)
    dup = {**initial_state("research lab"), "customer_id": first["customer_id"]}
    with store.transaction() as repo:
        counts = {t.name: repo.count(t) for t in tables.metadata.sorted_tables}
    with pytest.raises(AirflowFailException, match=f"already used by subscription {state['subscription_id']}"):
        run(create_subscription, dup, store, start={**START, "run_id": "manual__2"})
    with store.transaction() as repo:
        assert {t.name: repo.count(t) for t in tables.metadata.sorted_tables} == counts


def test_the_task_bodies_run_the_whole_workflow(store, monkeypatch):
    """Each task's `.function`, called as Airflow calls it, with the DAG run's params, dag_run and ti."""
    monkeypatch.delenv("AIRFLOW_VAR_USERGROUP_CUSTOMER_ID", raising=False)
    dag_run = SimpleNamespace(dag_id="create_user_group", run_id="manual__body", run_type="manual",
                              triggering_user_name="admin")
    ti = SimpleNamespace(try_number=1, hostname="worker-a")
    first, *rest = tasks_of(create_user_group)
    assert first.function.__name__ == "create_subscription"
    state = first.function(params={"group_name": "Body Lab"}, dag_run=dag_run, ti=ti)
    for task_ in rest:
        state = task_.function(state, params={}, dag_run=dag_run, ti=ti)
    assert state["process_id"] == str(process_id_for("create_user_group", "manual__body"))
    assert state["customer_id"] == str(settings().default_customer_id)
    with store.transaction() as repo:
        sub = repo.get_subscription(state["subscription_id"])
        assert sub.status == "active" and sub.insync and sub.user_group.group_id == state["group_id"]
        assert repo.get_process(state["process_id"])["created_by"] == "manual:admin"
        assert {s["hostname"] for s in repo.steps_of(state["process_id"])} == {"worker-a"}  # who ran each step


@pytest.mark.parametrize("params", [{}, {"group_name": None}, {"group_name": " x"}, {"group_name": 5}])
def test_the_first_task_validates_its_input_again(store, params):
    dag_run = SimpleNamespace(dag_id="create_user_group", run_id="r", run_type="manual")
    first = tasks_of(create_user_group)[0]
    with pytest.raises(AirflowFailException, match="Invalid input: group_name"):
        first.function(params=params, dag_run=dag_run, ti=SimpleNamespace(try_number=1))
    with store.transaction() as repo:
        assert repo.count(tables.processes) == 0


def test_conf_keys_that_are_not_params_are_refused_at_the_first_task(store):
    dag_run = SimpleNamespace(dag_id="create_user_group", run_id="typo", run_type="manual",
                              conf={"group_name": "Typo Lab", "grup_name": "x", "customer": "y"})
    first = tasks_of(create_user_group)[0]
    with pytest.raises(AirflowFailException, match="Invalid input: 'customer', 'grup_name' not a parameter of "
                                                   r"create_user_group \(its parameters: group_name\)"):
        first.function(params={"group_name": "Typo Lab"}, dag_run=dag_run, ti=SimpleNamespace(try_number=1))
    with store.transaction() as repo:
        assert repo.count(tables.processes) == 0


def test_the_customer_comes_from_an_airflow_variable(store, monkeypatch):
    customer = str(uuid4())
    monkeypatch.setenv("AIRFLOW_VAR_USERGROUP_CUSTOMER_ID", customer)
    dag_run = SimpleNamespace(dag_id="create_user_group", run_id="cust", run_type="manual")
    first = tasks_of(create_user_group)[0]
    state = first.function(params={"group_name": "x"}, dag_run=dag_run, ti=SimpleNamespace(try_number=1))
    assert state["customer_id"] == customer
    monkeypatch.setenv("AIRFLOW_VAR_USERGROUP_CUSTOMER_ID", "not-a-uuid")
    with pytest.raises(AirflowFailException, match="usergroup_customer_id is not a UUID"):
        first.function(params={"group_name": "y"}, dag_run=dag_run, ti=SimpleNamespace(try_number=1))


def run_chain(workflow, store, state, **kw):
    """Each step under its task id, as the DAG runs it; returns the states after each task."""
    states = {}
    for i, (s, task_id) in enumerate(zip(workflow.steps, workflow.task_ids, strict=True)):
        state = run(s, state, store, task_id=task_id, start=START if i == 0 else None, **kw)
        states[task_id] = state
    return states


def test_a_step_that_runs_twice_is_two_tasks_each_recorded(store):
    """orchestrator-core's own pattern: set_status(PROVISIONING) ... set_status(ACTIVE). The second is the task
    set_status__1: it runs (it does not replay the first one's row) and is recorded under its task id."""
    twice = Workflow(name="twice", description="", target=Target.CREATE, product_type="UserGroup",
                     form=CreateUserGroupForm,
                     steps=(create_subscription, store_process_subscription(Target.CREATE), initialize_subscription,
                            set_status(SubscriptionLifecycle.PROVISIONING), provision_user_group,
                            set_status(SubscriptionLifecycle.ACTIVE), resync, done))
    assert twice.task_ids[3] == "set_status" and twice.task_ids[5] == "set_status__1"
    states = run_chain(twice, store, initial_state())
    assert states["set_status"]["subscription"]["status"] == "provisioning"
    assert states["set_status__1"]["subscription"]["status"] == "active"
    process_id = states["done"]["process_id"]
    with store.transaction() as repo:
        assert repo.get_subscription(states["done"]["subscription_id"]).status == "active"
        rows = [(s["name"], s["task_id"], s["status"]) for s in repo.steps_of(process_id)]
    assert ("set_status", "set_status", "success") in rows and ("set_status", "set_status__1", "success") in rows
    assert len(rows) == len(twice.steps)


def test_each_mapped_instance_is_a_step_of_its_own(store):
    @step("Note")
    def note(process_id):
        return {}

    state = run(create_subscription, initial_state(), store, start=START)
    for map_index in (0, 1, 0):
        run(note, state, store, map_index=map_index)
    with store.transaction() as repo:
        rows = [(s["task_id"], s["map_index"], s["status"]) for s in repo.steps_of(state["process_id"])
                if s["name"] == "note"]
    assert rows == [("note", 0, "success"), ("note", 1, "success")]  # the third call found index 0 committed


def test_a_step_of_an_aborted_process_refuses_to_run(store):
    """After `usergroup processes abort`, no later task changes anything, and the process stays aborted."""
    state = run(create_subscription, initial_state(), store, start=START)
    state = run(store_process_subscription(Target.CREATE), state, store)
    with store.transaction() as repo:
        repo.abort_process(UUID(state["process_id"]), "the operator gave up")
        before = repo.get_subscription(state["subscription_id"])
    for s in (initialize_subscription, done):
        with pytest.raises(AirflowFailException, match=f"{s.name}: process {state['process_id']} was aborted "
                                                       r"\(the operator gave up\)"):
            run(s, state, store, try_number=2)
    with store.transaction() as repo:
        process = repo.get_process(state["process_id"])
        assert process["status"] == "aborted" and process["failed_reason"] == "the operator gave up"
        assert repo.get_subscription(state["subscription_id"]) == before
        assert [s["name"] for s in repo.steps_of(state["process_id"])] == ["create_subscription",
                                                                            "store_process_subscription"]


def test_a_task_without_state_fails_at_once_and_is_in_the_trail(store):
    """The upstream task was marked success by hand: Airflow hands the next task None. Which task is first was
    decided when the DAG was built, so this is a clear failure (no retry), recorded on the process."""
    dag_run = SimpleNamespace(dag_id="create_user_group", run_id="manual__nostate", run_type="manual")
    ti = SimpleNamespace(try_number=1, map_index=-1, hostname="w")
    first, second, *_ = tasks_of(create_user_group)
    state = first.function(params={"group_name": "No State Lab"}, dag_run=dag_run, ti=ti)
    with pytest.raises(AirflowFailException, match="initialize_subscription: no state from the upstream task"):
        tasks_of(create_user_group)[2].function(None, params={"group_name": "No State Lab"}, dag_run=dag_run, ti=ti)
    with store.transaction() as repo:
        process = repo.get_process(state["process_id"])
        assert process["status"] == "failed" and process["last_step"] == "initialize_subscription"
        assert "MissingStateError: initialize_subscription: no state" in process["failed_reason"]
        (row,) = [s for s in repo.steps_of(state["process_id"]) if s["task_id"] == "initialize_subscription"]
        assert row["status"] == "failed"
    # Even the first task of a run that never opened a process: the run's process is created to hold the reason.
    lone = SimpleNamespace(dag_id="create_user_group", run_id="manual__lone", run_type="manual")
    with pytest.raises(AirflowFailException, match="store_process_subscription: no state"):
        second.function(None, params={"group_name": "Lone"}, dag_run=lone, ti=ti)
    with store.transaction() as repo:
        assert repo.get_process(process_id_for("create_user_group", "manual__lone"))["status"] == "failed"


def test_two_live_tries_of_one_step_commit_once(store):
    """A zombie and its retry run one task at once: the process row is locked before the replay check, so
    exactly one try runs the step; the other waits, then replays its commit."""
    state = run(create_subscription, initial_state(), store, start=START)
    inside, results, errors = [], [], []
    both_in = threading.Event()

    @step("Slow step", returns=("slow",))
    def slow(process_id):
        inside.append(1)
        if len(inside) == 2:
            both_in.set()
        both_in.wait(3)  # without the lock both tries get here
        return {"slow": len(inside)}

    def attempt(try_number):
        try:
            results.append(run(slow, state, store, try_number=try_number))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(inside) == 1
    assert results[0] == results[1]
    with store.transaction() as repo:
        rows = sorted((s["status"]) for s in repo.steps_of(state["process_id"]) if s["name"] == "slow")
    assert rows == ["replayed", "success"]


def test_a_state_from_an_older_deploy_still_resumes(store):
    """Fields the models no longer declare (removed or renamed since the state was written) are ignored."""
    state = run(create_subscription, initial_state(), store, start=START)
    state = run(store_process_subscription(Target.CREATE), state, store)
    old = {**state, "subscription": {**state["subscription"], "legacy_flag": True,
                                     "user_group": {**state["subscription"]["user_group"], "old_field": 1}}}
    new = run(initialize_subscription, old, store)
    assert new["subscription"]["status"] == "provisioning" and "legacy_flag" not in new["subscription"]
