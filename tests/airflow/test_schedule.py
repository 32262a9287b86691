"""The nightly validation's task bodies, called as Airflow calls them: one process per subscription, whatever
its place in the selection; a refused subscription is skipped; a retry resumes."""

from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from helpers import create, create_user, oss_for, run_on
from usergroup.airflow.schedule import select_task, workflow_task
from usergroup.engine.process_id import process_id_for
from usergroup.workflows.user.modify_user import modify_user
from usergroup.workflows.user.validate_user import validate_user
from usergroup.workflows.user.validate_users import validate_users
from usergroup.workflows.user_group.modify_user_group import modify_user_group
from usergroup.workflows.user_group.terminate_user_group import terminate_user_group
from usergroup.workflows.user_group.validate_user_group import validate_user_group
from usergroup.workflows.user_group.validate_user_groups import validate_user_groups

RUN = SimpleNamespace(dag_id="validate_user_groups", run_id="scheduled__night", run_type="scheduled",
                      triggering_user_name=None, conf={})


def validate(subscription_id: str, index: int, try_number: int = 1, schedule=validate_user_groups) -> dict:
    ti = SimpleNamespace(map_index=index, try_number=try_number, hostname="worker")
    run = SimpleNamespace(**{**vars(RUN), "dag_id": schedule.name})
    return workflow_task(schedule.workflow).function(subscription_id, dag_run=run, ti=ti)


def select(schedule=validate_user_groups) -> list[str]:
    return select_task(schedule).function()


def test_each_subscription_is_a_process_of_its_own_whatever_its_place(store):
    a, b, c = (create(store, f"Night {x}")["subscription_id"] for x in "ABC")
    first = [validate(sid, i) for i, sid in enumerate(select())]
    assert [r["process_id"] for r in first] == [str(process_id_for(RUN.dag_id, RUN.run_id, s)) for s in (a, b, c)]
    # The whole run is cleared after A was terminated and D created: the selection shifts.
    run_on(store, terminate_user_group, a)
    d = create(store, "Night D")["subscription_id"]
    assert select() == [b, c, d]
    again = [validate(sid, i, try_number=2) for i, sid in enumerate(select())]
    assert [r["process_id"] for r in again] == [str(process_id_for(RUN.dag_id, RUN.run_id, s)) for s in (b, c, d)]
    with store.transaction() as repo:
        processes = repo.list_processes(dag_id=RUN.dag_id, run_id=RUN.run_id)
        assert len(processes) == 4 and {p["status"] for p in processes} == {"completed"}
        for p in processes:  # each process is its subscription's, and each step ran once
            (sid,) = repo.subscriptions_of(p["process_id"])
            assert p["input_state"]["subscription_id"] == str(sid)
            steps = [s for s in repo.steps_of(p["process_id"]) if s["status"] == "success"]
            assert [s["task_id"] for s in steps] == validate_user_group.task_ids


def test_drift_fails_its_own_instance_and_a_refused_one_is_skipped(store):
    ok, drifted, held = (create(store, f"Night {x}")["subscription_id"] for x in ("ok", "drifted", "held"))
    selected = select()
    oss_for(store).drift(drifted, remove=True)
    holder = run_on(store, modify_user_group, held, upto=2, group_name="Night held 2")  # taken since the selection
    validate(ok, selected.index(ok))
    with pytest.raises(AirflowFailException, match="group_id: expected .*, found none"):
        validate(drifted, selected.index(drifted))
    with pytest.raises(AirflowSkipException, match=f"held by process {holder['process_id']}"):
        validate(held, selected.index(held))
    with store.transaction() as repo:
        statuses = {str(repo.subscriptions_of(p["process_id"])[0]): p["status"]
                    for p in repo.list_processes(dag_id=RUN.dag_id)}
    assert statuses == {ok: "completed", drifted: "failed"}  # the skipped one wrote nothing


def test_the_users_nightly_validation_selects_active_users_in_sync_and_a_drifted_one_fails_alone(store):
    gid = create(store, "Night Users")["subscription_id"]
    ok, drifted, held = (create_user(store, gid, name)["subscription_id"] for name in ("ok", "drifted", "held"))
    create_user(store, gid, "half", upto=3)  # provisioning: not selected
    selected = select(validate_users)
    assert sorted(selected) == sorted([ok, drifted, held])  # users only, active and in sync
    holder = run_on(store, modify_user, held, upto=2, username="held 2")  # taken since the selection
    oss_for(store).deprovision_user(drifted)
    validate(ok, selected.index(ok), schedule=validate_users)
    with pytest.raises(AirflowFailException, match=r"user\.user_id: expected .*, found none"):
        validate(drifted, selected.index(drifted), schedule=validate_users)
    with pytest.raises(AirflowSkipException, match=f"held by process {holder['process_id']}"):
        validate(held, selected.index(held), schedule=validate_users)
    with store.transaction() as repo:
        processes = repo.list_processes(dag_id=validate_users.name)
        statuses = {str(repo.subscriptions_of(p["process_id"])[0]): p["status"] for p in processes}
        ok_steps = [s["task_id"] for p in processes if p["status"] == "completed"
                    for s in repo.steps_of(p["process_id"])]
        insync = {sid: repo.get_subscription(sid).insync for sid in (ok, drifted)}
    assert statuses == {ok: "completed", drifted: "failed"}  # the skipped one wrote nothing
    assert ok_steps == validate_user.task_ids and insync == {ok: True, drifted: False}
    assert select(validate_users) == [ok]  # out of sync, held: neither is picked the next night
