"""Subscription events through Airflow (`dag.test()`): a create, a modify and a terminate each register one asset
event on `usergroup://subscriptions/user_group` with what the process left, queue the example consumer scheduled
on it, and are marked announced; a failed process registers none."""

import pytest
from sqlalchemy import select

from helpers import ROOT, oss_for

pytestmark = pytest.mark.slow

USER_GROUPS = "usergroup://subscriptions/user_group"
CONSUMER = "subscription_events"


@pytest.fixture
def consumer(airflow_db):
    """examples/dags/subscription_events.py, parsed and unpaused as a dag-processor and an operator would."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    bag = DagBag(dag_folder=str(ROOT / "examples" / "dags" / f"{CONSUMER}.py"))
    assert not bag.import_errors and CONSUMER in bag.dags
    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(bag, "dags-folder", None)
    with create_session() as session:
        session.get(DagModel, CONSUMER).is_paused = False
    return bag.dags[CONSUMER]


def registered(after: int = 0) -> list[dict]:
    """The asset events Airflow holds for the User Group asset after the `after` first (the metadata database is
    shared by the tests of one worker), oldest first: their extras."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return [e.extra for e in session.scalars(select(AssetEvent).join(AssetModel, AssetEvent.asset_id ==
                                                                         AssetModel.id)
                                                 .where(AssetModel.uri == USER_GROUPS).order_by(AssetEvent.id))][after:]


def queued() -> set[str]:
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session

    with create_session() as session:
        return {q.target_dag_id for q in session.scalars(select(AssetDagRunQueue))}


@pytest.mark.parametrize("store_target", ["postgres"], indirect=True)
def test_create_modify_terminate_each_register_one_event_and_queue_the_consumer(run, dag_test, store, consumer,
                                                                                knobs):
    assert USER_GROUPS in {a.uri for a in consumer.timetable.asset_condition.objects}
    earlier = len(registered())
    run("create_user_group", group_name="Announced Lab")
    with store.transaction() as repo:
        (sub,) = repo.list_subscriptions()
    sid = str(sub.subscription_id)
    run("modify_user_group", subscription_id=sid, group_name="Renamed Lab")
    run("terminate_user_group", subscription_id=sid)
    events = registered(earlier)
    assert [(e["subscription_id"], e["workflow"], e["target"], e["status"]) for e in events] == [
        (sid, "create_user_group", "CREATE", "active"), (sid, "modify_user_group", "MODIFY", "active"),
        (sid, "terminate_user_group", "TERMINATE", "terminated")]
    with store.transaction() as repo:
        processes = {p["workflow_name"]: p for p in repo.processes_of(sid)}
        assert [e["process_id"] for e in events] == [str(processes[w]["process_id"]) for w in (
            "create_user_group", "modify_user_group", "terminate_user_group")]
        assert [e["version"] for e in events] == sorted({e["version"] for e in events})  # each a newer one
        assert events[-1]["version"] == repo.get_subscription(sid).version
        assert repo.unannounced(run=("create_user_group", processes["create_user_group"]["run_id"])) == []
    assert CONSUMER in queued()  # the scheduler's next loop starts a run of it with these events

    knobs(USERGROUP_FAKE_OSS_REFUSE="^Refused")  # a failed create announces nothing
    state, out = dag_test("create_user_group", group_name="Refused Lab")
    assert state == "failed" and "Refused Lab" in out
    assert len(registered(earlier)) == 3 and oss_for(store).groups() == []
