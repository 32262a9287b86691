"""End to end: create_user_groups runs through Airflow (`dag.test()`, the run
`airflow dags test` makes) on both databases, then the store is
checked: 195 of 200 groups active, five failed processes each with its reason, and a file source."""

import pytest

from helpers import create, oss_for
from usergroup.workflows.user_group.create_user_group import create_user_group

pytestmark = pytest.mark.slow  # runs DAGs through Airflow: make test, not make test-fast

DAG_ID = "create_user_groups"


def test_two_hundred_with_three_given_twice_and_two_taken(dag_test, store):
    create(store, "Taken one")
    create(store, "Taken two")
    names = [f"Bulk group {i:03}" for i in range(195)]
    given = names + ["bulk GROUP 007", "Bulk group\u00a0008", "BULK group 009", "taken ONE", "Taken two"]
    state, out = dag_test(DAG_ID, group_names=given)
    assert state == "failed"  # the run fails, naming the five
    assert "5 of 200 items did not complete" in out and "'taken ONE'" in out
    with store.transaction() as repo:
        procs = repo.list_processes(dag_id=DAG_ID)
        assert len(procs) == 200
        done = [p for p in procs if p["status"] == "completed"]
        failed = {p["input_state"]["group_name"]: p["failed_reason"] for p in procs if p["status"] == "failed"}
        assert len(done) == 195 and set(failed) == set(given[-5:])
        assert "given twice in this run: item 197 and item 9 ('Bulk group 008')" in failed["Bulk group\u00a0008"]
        assert "'taken ONE' is already used by subscription" in failed["taken ONE"]
        active = [s for s in repo.list_subscriptions() if s.status == "active" and s.insync]
        assert sorted(s.user_group.group_name for s in active) == sorted([*names, "Taken one", "Taken two"])
        for p in done[:5]:
            steps = repo.steps_of(p["process_id"])
            assert [s["task_id"] for s in steps] == create_user_group.task_ids
    assert len(oss_for(store).groups()) == 197


def test_a_file_of_names(dag_test, store, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_USERGROUP_BULK_SOURCES", f"file://{tmp_path}/")
    (tmp_path / "groups.txt").write_text("".join(f"File group {i}\n" for i in range(20)), encoding="utf-8")
    state, out = dag_test(DAG_ID, source=f"file://{tmp_path}/groups.txt")
    assert state == "success", out[-3000:]
    with store.transaction() as repo:
        assert sorted(s.user_group.group_name for s in repo.list_subscriptions() if s.status == "active") == sorted(
            f"File group {i}" for i in range(20))


@pytest.mark.parametrize("store_target", ["sqlite"], indirect=True)  # refused before the store is written
def test_a_refused_input_fails_the_run_and_writes_nothing(dag_test, store):
    state, out = dag_test(DAG_ID, source="file:///etc/passwd")
    assert state == "failed"
    assert "is not in a place bulk runs may read from" in out and "the run has no items" in out
    with store.transaction() as repo:
        assert repo.list_processes(dag_id=DAG_ID) == [] and repo.list_subscriptions() == []
