"""The nightly validation's task bodies, called as Airflow calls them: one process per subscription, whatever
its place in the selection; a refused subscription is skipped; a retry resumes."""

from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from helpers import create, oss_for, run_on
from usergroup.airflow.schedule import select_task, workflow_task
from usergroup.engine.process_id import process_id_for
from usergroup.workflows.user_group.modify_user_group import modify_user_group
from usergroup.workflows.user_group.terminate_user_group import terminate_user_group
from usergroup.workflows.user_group.validate_user_group import validate_user_group
from usergroup.workflows.user_group.validate_user_groups import validate_user_groups

RUN = SimpleNamespace(dag_id="validate_user_groups", run_id="scheduled__night", run_type="scheduled",
                      triggering_user_name=None, conf={})


def validate(subscription_id: str, index: int, try_number: int = 1) -> dict:
    ti = SimpleNamespace(map_index=index, try_number=try_number, hostname="worker")
    return workflow_task(validate_user_group).function(subscription_id, dag_run=RUN, ti=ti)


def select() -> list[str]:
    return select_task(validate_user_groups).function()


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
