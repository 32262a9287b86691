"""Subscription events: a completed process's event is written with its completion, announced on its product's
asset by the task that completed it, once: a retry announces what no earlier try got registered, a replay after
Airflow took it announces nothing, a failed or aborted process nothing; a bulk run one event per chunk."""

from types import SimpleNamespace
from uuid import UUID

import pytest
from airflow.sdk.execution_time.context import OutletEventAccessors

from helpers import counts, create, create_user, oss_for, run_on
from usergroup.airflow.bulk import ANNOUNCE_TASK
from usergroup.airflow.dags import bulk_dag
from usergroup.airflow.events import announced, mark_announced
from usergroup.airflow.schedule import workflow_task
from usergroup.airflow.tasks import step_task
from usergroup.engine.generic_steps import done
from usergroup.workflows.user.terminate_user import terminate_user
from usergroup.workflows.user_group.create_user_group import create_user_group
from usergroup.workflows.user_group.create_user_groups import create_user_groups
from usergroup.workflows.user_group.modify_user_group import modify_user_group
from usergroup.workflows.user_group.validate_user_group import validate_user_group

USER_GROUPS = "usergroup://subscriptions/user_group"


def emitted(outlet_events: OutletEventAccessors) -> list[tuple[str, str, dict]]:
    """What the task's outlet events would have Airflow register: (alias, asset uri, extra) each."""
    return [(added.source_alias_name, added.dest_asset_key.uri, added.extra)
            for accessor in outlet_events._dict.values() for added in accessor.asset_alias_events]


def run_done(state: dict, workflow=create_user_group, try_number: int = 1) -> OutletEventAccessors:
    """The DAG's last task (`done`) as Airflow calls it: the outlet events it leaves."""
    outlet_events = OutletEventAccessors()
    task = step_task(done, workflow, task_id="done")
    dag_run = SimpleNamespace(dag_id=workflow.name, run_id="r", run_type="manual", conf={})
    task.function(state, params={}, dag_run=dag_run, ti=SimpleNamespace(try_number=try_number, hostname="w"),
                  outlet_events=outlet_events)
    return outlet_events


def succeeded(outlet_events: OutletEventAccessors, task_id: str = "done", product_type: str = "UserGroup") -> None:
    """Airflow registered the events and ran the task's success callback."""
    mark_announced(product_type, {"outlet_events": outlet_events, "ti": SimpleNamespace(task_id=task_id)})


def test_the_task_that_completes_a_create_announces_it_once(store):
    before = create(store, "Evented Lab", upto=len(create_user_group.steps) - 1)
    first = run_done(before)
    ((alias, uri, extra),) = emitted(first)
    with store.transaction() as repo:
        sub = repo.get_subscription(before["subscription_id"])
    assert (alias, uri) == ("usergroup_subscriptions_user_group", USER_GROUPS)
    assert extra == {"subscription_id": before["subscription_id"], "process_id": before["process_id"],
                     "workflow": "create_user_group", "target": "CREATE", "status": "active",
                     "version": sub.version, "product_type": "UserGroup", "completed_at": extra["completed_at"]}
    assert announced(first, "UserGroup") == [UUID(before["process_id"])]
    succeeded(first)
    assert emitted(run_done(before, try_number=2)) == []  # cleared after its success: replayed, nothing again


def test_a_retry_after_a_kill_between_the_commit_and_airflows_success_announces_it(store):
    before = create(store, "Killed Lab", upto=len(create_user_group.steps) - 1)
    assert len(emitted(run_done(before))) == 1  # committed, then killed: Airflow registered nothing
    retried = run_done(before, try_number=2)
    assert [e[2]["process_id"] for e in emitted(retried)] == [before["process_id"]]
    succeeded(retried)
    with store.transaction() as repo:
        assert repo.unannounced([UUID(before["process_id"])]) == []
    assert emitted(run_done(before, try_number=3)) == []


def test_modify_terminate_and_a_users_events_say_what_each_left(store):
    created = create(store, "Lifecycle Lab")
    modified = run_on(store, modify_user_group, created["subscription_id"], group_name="Renamed Lab", upto=-1)
    ((_, uri, extra),) = emitted(run_done(modified, modify_user_group))
    assert (uri, extra["workflow"], extra["target"], extra["status"]) == (USER_GROUPS, "modify_user_group",
                                                                          "MODIFY", "active")
    assert extra["version"] > created["subscription"]["version"]
    user = create_user(store, created["subscription_id"], "ada")
    gone = run_on(store, terminate_user, user["subscription_id"], upto=-1)
    ((alias, uri, extra),) = emitted(run_done(gone, terminate_user))
    assert (alias, uri) == ("usergroup_subscriptions_user", "usergroup://subscriptions/user")
    assert (extra["subscription_id"], extra["target"], extra["status"], extra["product_type"]) == (
        user["subscription_id"], "TERMINATE", "terminated", "User")


def test_a_failed_or_aborted_process_announces_nothing(store, knobs):
    knobs(USERGROUP_FAKE_OSS_REFUSE="^Refused")
    with pytest.raises(Exception, match="refuses group 'Refused Lab'"):
        create(store, "Refused Lab")
    assert counts(store)["subscription_events"] == 0
    with store.transaction() as repo:
        assert repo.unannounced(run=("create_user_group", "r")) == []


def test_the_nightly_validation_announces_each_subscription_from_its_instance(store):
    sid = create(store, "Nightly Lab")["subscription_id"]
    outlet_events = OutletEventAccessors()
    dag_run = SimpleNamespace(dag_id="validate_user_groups", run_id="scheduled__n", run_type="scheduled")
    workflow_task(validate_user_group).function(sid, dag_run=dag_run, ti=SimpleNamespace(
        map_index=0, try_number=1, hostname="w"), outlet_events=outlet_events)
    ((_, uri, extra),) = emitted(outlet_events)
    assert (uri, extra["subscription_id"], extra["workflow"], extra["target"]) == (
        USER_GROUPS, sid, "validate_user_group", "VALIDATE")


def test_a_bulk_run_announces_one_event_per_chunk_listing_its_items(store, knobs):
    knobs(USERGROUP_CHUNK_SIZE="10", USERGROUP_FAKE_OSS_REFUSE="^Refused")
    dag = bulk_dag(create_user_groups)
    run = SimpleNamespace(dag_id="create_user_groups", run_id="bulk", run_type="manual", triggering_user_name="a",
                          conf={})
    params = {"group_names": [f"Chunk {i}" for i in range(23)] + ["Refused 1"], "source": None}
    for task_id in create_user_group.task_ids:
        try:
            dag.get_task(task_id).python_callable(params=params, dag_run=run, ti=SimpleNamespace(
                map_index=-1, try_number=1, hostname="w"))
        except Exception as exc:  # the refused item fails provision_user_group and done; the others go on
            assert "Refused 1" in str(exc)
    outlet_events = OutletEventAccessors()  # the teardown after `done`, which failed
    assert dag.get_task(ANNOUNCE_TASK).python_callable(dag_run=run, outlet_events=outlet_events) == {
        "announced": 23}
    events = emitted(outlet_events)
    assert [len(e[2]["subscriptions"]) for e in events] == [e[2]["count"] for e in events] == [10, 10, 3]
    assert {(e[1], e[2]["workflow"], e[2]["target"]) for e in events} == {
        (USER_GROUPS, "create_user_group", "CREATE")}
    items = [item for e in events for item in e[2]["subscriptions"]]
    with store.transaction() as repo:
        active = {str(s.subscription_id): s.version for s in repo.list_subscriptions() if s.status == "active"}
    assert {i["subscription_id"]: i["version"] for i in items} == active and len(active) == 23
    assert {i["status"] for i in items} == {"active"}
    succeeded(outlet_events, ANNOUNCE_TASK)
    again = OutletEventAccessors()
    assert dag.get_task(ANNOUNCE_TASK).python_callable(dag_run=run, outlet_events=again) == {"announced": 0}
    assert emitted(again) == [] and oss_for(store).groups()
