"""End to end: create_user_group runs through Airflow (`dag.test()`, the run `airflow dags test` makes; the
refusals through the command itself), then the store is checked."""

import sqlite3

import pytest

from helpers import dags_test
from usergroup.store import tables
from usergroup.workflows.user_group.create_user_group import create_user_group

pytestmark = pytest.mark.slow  # runs DAGs, some through `airflow dags test`: make test, not make test-fast

STEPS = create_user_group.task_ids
NAMES = ["Research Lab", "O'Brien \"q\" <b>html</b>'); DROP TABLE subscriptions;--", "Zürich 研究室 👩‍🔬 \\ $HOME"]


def dag_runs(airflow_db) -> int:
    with sqlite3.connect(airflow_db) as conn:
        return conn.execute("SELECT count(*) FROM dag_run WHERE dag_id = 'create_user_group'").fetchone()[0]


def row_counts(store) -> dict[str, int]:
    with store.transaction() as repo:
        return {t.name: repo.count(t) for t in tables.metadata.sorted_tables
                if t.name not in ("products", "fixed_inputs")}


@pytest.mark.parametrize("store_target", ["postgres"], indirect=True)  # the store suite runs both databases
def test_names_end_active_and_in_sync(dag_test, store):
    for name in NAMES:
        state, out = dag_test("create_user_group", group_name=name)
        assert state == "success", out[-3000:]
    with store.transaction() as repo:
        subs = repo.list_subscriptions()
        assert sorted(s.user_group.group_name for s in subs) == sorted(NAMES)
        for sub in subs:
            assert sub.status == "active" and sub.insync is True
            assert sub.description == f"User Group {sub.user_group.group_name}"
            assert sub.user_group.group_id > 0 and sub.start_date is not None
            (process,) = repo.processes_of(sub.subscription_id)
            assert process["status"] == "completed" and process["workflow_target"] == "CREATE"
            assert process["link_target"] == "CREATE" and process["last_step"] == "done"
            steps = repo.steps_of(process["process_id"])
            assert [s["name"] for s in steps] == STEPS and {s["status"] for s in steps} == {"success"}
    assert row_counts(store) == {"subscriptions": 3, "user_group_blocks": 3, "user_blocks": 0, "processes": 3,
                                 "process_steps": 21, "processes_subscriptions": 3, "subscription_events": 3}


@pytest.mark.parametrize("store_target", ["sqlite"], indirect=True)  # refused before any store is touched
@pytest.mark.parametrize(
    ("conf", "message"),
    [  # one Param refusal and the CLI's own JSON refusal, end to end; every rule in tests/dags/test_dag_params.py
        (None, "Invalid input for param group_name: No value passed"),
        ('{"group_name": "a"', "is not valid JSON. Error: Expecting ',' delimiter"),
    ],
)
def test_rejected_names_create_no_run_and_no_row(airflow_db, store, conf, message):
    runs = dag_runs(airflow_db)
    result = dags_test(conf)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert dag_runs(airflow_db) == runs
    assert set(row_counts(store).values()) == {0}


@pytest.mark.parametrize("store_target", ["sqlite"], indirect=True)  # end to end on the embedded store too
def test_a_duplicate_name_fails_at_the_first_step_and_adds_nothing(dag_test, store):
    """A name is the same name ignoring case and Unicode composition: Café typed decomposed (NFD) is stored
    composed (NFC), and "CAFÉ" typed composed is refused as its duplicate."""
    assert dag_test("create_user_group", group_name="Shared Cafe\u0301")[0] == "success"
    before = row_counts(store)
    with store.transaction() as repo:
        (holder,) = repo.list_subscriptions()
    assert holder.user_group.group_name == "Shared Caf\u00e9" and holder.description == "User Group Shared Caf\u00e9"
    state, out = dag_test("create_user_group", group_name="shared CAF\u00c9")
    assert state == "failed"
    assert f"already used by subscription {holder.subscription_id}" in out
    assert "AirflowFailException: create_subscription: group_name 'shared CAFÉ' is already used" in out
    assert row_counts(store) == before
