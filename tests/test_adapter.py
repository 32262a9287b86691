"""The adapter: merge the state, commit the subscription with the step row, nothing on failure, no repeats."""

from types import SimpleNamespace
from uuid import UUID, uuid4

import pytest
from airflow.sdk.exceptions import AirflowFailException

from conftest import oss_for
from usergroup.adapter import DEFAULT_CUSTOMER_ID, process_id_for, run_step, step_task
from usergroup.domain import USER_GROUP_PRODUCT, SubscriptionLifecycle, Target
from usergroup.provisioning import OssBssError
from usergroup.step import step
from usergroup.steps import done, resync, set_status, store_process_subscription
from usergroup.store import tables
from usergroup.workflows.create_user_group import (
    CreateUserGroupForm,
    create_subscription,
    initialize_subscription,
    provision_user_group,
)

START = {"workflow_name": "create_user_group", "workflow_target": "CREATE", "dag_id": "create_user_group",
         "run_id": "manual__1", "created_by": "manual:tester"}


def initial_state(name="Research Lab") -> dict:
    return {"process_id": str(uuid4()), "workflow_name": "create_user_group", "workflow_target": "CREATE",
            "product_id": str(USER_GROUP_PRODUCT.product_id), "customer_id": str(uuid4()), "group_name": name}


def run(step_, state, store, try_number=1, start=None):
    return run_step(step_, state, store=store, oss=oss_for(store), try_number=try_number, start=start)


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
    def half_done(subscription_id, repository):
        repository.link_subscription(UUID(state["process_id"]), UUID(subscription_id), "CREATE")
        raise OssBssError("the OSS went away")

    with pytest.raises(OssBssError):  # transient: Airflow retries it
        run(half_done, state, store)
    with store.transaction() as repo:
        assert repo.count(tables.processes_subscriptions) == 0
        process = repo.get_process(state["process_id"])
        assert process["status"] == "failed" and process["last_step"] == "half_done"
        assert "OssBssError: the OSS went away" in process["failed_reason"] and "Traceback" in process["traceback"]
        failed = [s for s in repo.steps_of(state["process_id"]) if s["status"] == "failed"]
        assert [s["name"] for s in failed] == ["half_done"] and "the OSS went away" in failed[0]["error"]


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
    steps = [store_process_subscription(Target.CREATE), initialize_subscription, provision_user_group,
             set_status(SubscriptionLifecycle.ACTIVE), resync, done]
    first = step_task(create_subscription, form=CreateUserGroupForm, target=Target.CREATE)
    assert first.function.__name__ == "create_subscription"
    state = first.function(params={"group_name": "Body Lab"}, dag_run=dag_run, ti=ti)
    for s in steps:
        state = step_task(s).function(state, params={}, dag_run=dag_run, ti=ti)
    assert state["process_id"] == str(process_id_for("create_user_group", "manual__body"))
    assert state["customer_id"] == DEFAULT_CUSTOMER_ID
    with store.transaction() as repo:
        sub = repo.get_subscription(state["subscription_id"])
        assert sub.status == "active" and sub.insync and sub.user_group.group_id == state["group_id"]
        assert repo.get_process(state["process_id"])["created_by"] == "manual:admin"
        assert {s["hostname"] for s in repo.steps_of(state["process_id"])} == {"worker-a"}  # who ran each step


@pytest.mark.parametrize("params", [{}, {"group_name": None}, {"group_name": " x"}, {"group_name": 5}])
def test_the_first_task_validates_its_input_again(store, params):
    dag_run = SimpleNamespace(dag_id="create_user_group", run_id="r", run_type="manual")
    first = step_task(create_subscription, form=CreateUserGroupForm, target=Target.CREATE)
    with pytest.raises(AirflowFailException, match="Invalid input: group_name"):
        first.function(params=params, dag_run=dag_run, ti=SimpleNamespace(try_number=1))
    with store.transaction() as repo:
        assert repo.count(tables.processes) == 0


def test_the_customer_comes_from_an_airflow_variable(store, monkeypatch):
    customer = str(uuid4())
    monkeypatch.setenv("AIRFLOW_VAR_USERGROUP_CUSTOMER_ID", customer)
    dag_run = SimpleNamespace(dag_id="create_user_group", run_id="cust", run_type="manual")
    first = step_task(create_subscription, form=CreateUserGroupForm, target=Target.CREATE)
    state = first.function(params={"group_name": "x"}, dag_run=dag_run, ti=SimpleNamespace(try_number=1))
    assert state["customer_id"] == customer
    monkeypatch.setenv("AIRFLOW_VAR_USERGROUP_CUSTOMER_ID", "not-a-uuid")
    with pytest.raises(AirflowFailException, match="usergroup_customer_id is not a UUID"):
        first.function(params={"group_name": "y"}, dag_run=dag_run, ti=SimpleNamespace(try_number=1))
