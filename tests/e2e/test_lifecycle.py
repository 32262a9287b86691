"""End to end through Airflow (`dag.test()`, the run `airflow dags test` makes; malformed input through the
command itself): a User Group's whole life, a User's, and the nightly
validation over fifty subscriptions, two of them drifted."""

import json

import pytest

from helpers import USER_EXTERNAL, approving, counts, create, dags_test, oss_for
from usergroup.engine.discovery import all_workflows

pytestmark = pytest.mark.slow  # runs DAGs, some through `airflow dags test`: make test, not make test-fast


@pytest.mark.parametrize("store_target", ["postgres"], indirect=True)
def test_modify_validate_terminate(run, store):
    """After a create (its own end-to-end tests run it through Airflow), each workflow through Airflow."""
    created = create(store, "Short Lived")
    sid = created["subscription_id"]
    run("modify_user_group", subscription_id=sid, group_name="Renamed Lab", version=created["subscription"]["version"])
    run("validate_user_group", subscription_id=sid)
    run("terminate_user_group", subscription_id=sid)
    with store.transaction() as repo:
        sub = repo.get_subscription(sid)
        assert (sub.status, sub.insync, sub.user_group.group_name) == ("terminated", True, "Renamed Lab")
        assert sub.end_date is not None and sub.description == "User Group Renamed Lab"
        processes = repo.processes_of(sid)
        assert [(p["workflow_target"], p["status"]) for p in processes] == [
            ("CREATE", "completed"), ("MODIFY", "completed"), ("VALIDATE", "completed"), ("TERMINATE", "completed")]
        for p in processes:  # each process's trail is its DAG's chain of tasks
            assert [s["task_id"] for s in repo.steps_of(p["process_id"])] == all_workflows()[p["dag_id"]].task_ids
    assert [c["action"] for c in oss_for(store).changes(sid)] == ["provision", "rename", "remove"]


def test_a_users_whole_life_and_its_groups(run, dag_test, store):
    """create_user, modify_user, terminate_user through Airflow; the group is refused termination while the user
    lives (writing nothing), and terminates after."""
    gid = create(store, "Users Lab")["subscription_id"]
    with approving(store) as refusals:
        state, out = dag_test("create_user", product=USER_EXTERNAL, user_group_id=gid, username="zoë", age=33)
        assert state == "success", (refusals, out[-3000:])
    with store.transaction() as repo:
        (user,) = [s for s in repo.list_subscriptions() if s.product.product_type == "User"]
    uid = str(user.subscription_id)
    assert (user.status, user.insync, user.affiliation, user.user.group.group_name) == \
        ("active", True, "external", "Users Lab")
    run("modify_user", subscription_id=uid, username="Zoë Z", version=user.version)
    before = counts(store)
    state, out = dag_test("terminate_user_group", subscription_id=gid)
    assert state == "failed" and "used in other subscriptions" in out
    assert counts(store) == before
    run("terminate_user", subscription_id=uid)
    run("terminate_user_group", subscription_id=gid)
    with store.transaction() as repo:
        user, group = repo.get_subscription(uid), repo.get_subscription(gid)
        assert (user.status, user.user.username, user.user.age, group.status) == \
            ("terminated", "Zoë Z", 33, "terminated")
        assert user.description == "User Zoë Z from group Users Lab (external)"
        for p in repo.processes_of(uid):
            assert p["status"] == "completed"
            assert [s["task_id"] for s in repo.steps_of(p["process_id"])] == all_workflows()[p["dag_id"]].task_ids
    assert [c["action"] for c in oss_for(store).changes(uid)] == ["provision_user", "update_user", "remove_user"]


@pytest.mark.parametrize("store_target", ["sqlite"], indirect=True)  # refused before any store is touched
@pytest.mark.parametrize(("dag_id", "conf", "param"), [
    ("terminate_user_group", {"subscription_id": "not-a-uuid"}, "subscription_id"),
    ("modify_user_group", {"subscription_id": "6b3c3a1e-5d0f-4e43-9a2f-2f1e0a8b7c01", "group_name": ""},
     "group_name"),
])
def test_malformed_input_creates_no_run(airflow_db, store, dag_id, conf, param):
    result = dags_test(json.dumps(conf), dag_id=dag_id)
    assert result.returncode != 0 and f"Invalid input for param {param}" in result.stdout + result.stderr


@pytest.mark.parametrize("store_target", ["postgres"], indirect=True)
def test_the_nightly_validation_of_fifty_groups_two_drifted(dag_test, store):
    sids = [create(store, f"Nightly {i:02}")["subscription_id"] for i in range(50)]
    oss = oss_for(store)
    oss.drift(sids[7], group_name="Nightly 07 (renamed by hand)")
    oss.drift(sids[31], remove=True)
    assert dag_test("validate_user_groups")[0] == "failed"  # the run fails: two validations failed
    with store.transaction() as repo:
        nightly = repo.list_processes(dag_id="validate_user_groups")
        assert len(nightly) == 50 and len({p["process_id"] for p in nightly}) == 50
        by_subscription = {str(repo.subscriptions_of(p["process_id"])[0]): p for p in nightly}
        assert set(by_subscription) == set(sids)  # one process per subscription
        failed = {s for s, p in by_subscription.items() if p["status"] == "failed"}
        assert failed == {sids[7], sids[31]}
        assert sum(p["status"] == "completed" for p in nightly) == 48
        assert "group_name: expected 'Nightly 07', found 'Nightly 07 (renamed by hand)'" in \
            by_subscription[sids[7]]["failed_reason"]
        assert "found none" in by_subscription[sids[31]]["failed_reason"]
        insync = {str(s.subscription_id): s.insync for s in repo.list_subscriptions()}
    assert [s for s, ok in insync.items() if not ok] == [sids[7], sids[31]] or \
        {s for s, ok in insync.items() if not ok} == {sids[7], sids[31]}
    for p in nightly:  # each recorded under its mapped instance, with the workflow's task ids
        assert p["workflow_name"] == "validate_user_group" and p["workflow_target"] == "VALIDATE"
