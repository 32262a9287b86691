"""One `airflow dags test` per DAG, the command itself (the other end-to-end runs call `dag.test()` in-process):
each run completes its processes, its trail is the DAG's tasks, and Airflow logs no error of ours (the listener
included). create_user_group runs on both stores (`make run`'s embedded SQLite, PostgreSQL); the rest on
PostgreSQL, the production store (their steps run on both in tests/workflows)."""

import json

import pytest

from helpers import USER_INTERNAL, create, create_user, dags_test
from usergroup.engine.discovery import declared

pytestmark = pytest.mark.slow  # spawns `airflow dags test`: make test, not make test-fast


def _group(store) -> dict:
    return {"subscription_id": create(store, "Smoke Lab")["subscription_id"]}


def _user(store) -> dict:
    gid = create(store, "Smoke Lab")["subscription_id"]
    return {"subscription_id": create_user(store, gid, "smoke")["subscription_id"]}


# Each DAG's conf for its smoke, made on the store it runs on (a DAG without one fails test_every_dag_has_one).
CONF = {
    "create_user_group": lambda store: {"group_name": "O'Brien \"q\" <b>Smoke</b>'); DROP TABLE subscriptions;--"},
    "modify_user_group": lambda store: {**_group(store), "group_name": "Smoke Lab Renamed"},
    "validate_user_group": _group,
    "terminate_user_group": _group,
    "create_user": lambda store: {"product": USER_INTERNAL, "user_group_id": _group(store)["subscription_id"],
                                  "username": "zoë", "age": 33},
    "modify_user": lambda store: {**_user(store), "username": "Zoë Z"},
    "terminate_user": _user,
    "validate_user": _user,
    "create_user_groups": lambda store: {"group_names": ["Smoke 1", "Smoke 2", "Smoke 3"]},
    "validate_user_groups": lambda store: _group(store) and None,  # the schedule takes no conf
    "validate_users": lambda store: _user(store) and None,
}


def test_every_dag_has_one():
    assert sorted(CONF) == sorted(declared())


@pytest.mark.parametrize(("dag_id", "store_target"), [
    *[(dag_id, "postgres") for dag_id in CONF], ("create_user_group", "sqlite")], indirect=["store_target"])
def test_airflow_dags_test(airflow_db, store, dag_id):
    conf = CONF[dag_id](store)
    with store.transaction() as repo:
        before = {p["process_id"] for p in repo.list_processes()}
    result = dags_test(None if conf is None else json.dumps(conf), dag_id)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "Error while calling listener" not in out and "usergroup: could not" not in out
    workflow = getattr(declared()[dag_id], "workflow", declared()[dag_id])  # a bulk's or a schedule's item
    with store.transaction() as repo:
        new = [p for p in repo.list_processes() if p["process_id"] not in before]
        assert new and {p["status"] for p in new} == {"completed"} and {p["dag_id"] for p in new} == {dag_id}
        for p in new:
            assert [s["task_id"] for s in repo.steps_of(p["process_id"])] == workflow.task_ids
