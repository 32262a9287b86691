"""End to end: terminate_user_group runs through Airflow (`airflow dags test`) after a create."""

import json

import pytest

from helpers import dags_test
from usergroup.workflows.terminate_user_group import terminate_user_group


@pytest.mark.parametrize("store_target", ["postgres"], indirect=True)
def test_create_then_terminate(airflow_db, store):
    assert dags_test(json.dumps({"group_name": "Short Lived"})).returncode == 0
    with store.transaction() as repo:
        (sub,) = repo.list_subscriptions()
    result = dags_test(json.dumps({"subscription_id": str(sub.subscription_id), "version": sub.version}),
                       dag_id="terminate_user_group")
    assert result.returncode == 0, result.stdout[-3000:]
    with store.transaction() as repo:
        sub = repo.get_subscription(sub.subscription_id)
        assert sub.status == "terminated" and sub.insync and sub.end_date is not None
        targets = [(p["workflow_target"], p["status"]) for p in repo.processes_of(sub.subscription_id)]
        assert targets == [("CREATE", "completed"), ("TERMINATE", "completed")]
        (terminate,) = [p for p in repo.processes_of(sub.subscription_id) if p["workflow_target"] == "TERMINATE"]
        assert [s["task_id"] for s in repo.steps_of(terminate["process_id"])] == terminate_user_group.task_ids
    again = dags_test(json.dumps({"subscription_id": str(sub.subscription_id)}), dag_id="terminate_user_group")
    assert again.returncode != 0
    assert f"subscription {sub.subscription_id} is terminated: it cannot be terminated" in again.stdout


@pytest.mark.parametrize("store_target", ["sqlite"], indirect=True)  # refused before any store is touched
def test_a_malformed_subscription_id_creates_no_run(airflow_db, store):
    result = dags_test(json.dumps({"subscription_id": "not-a-uuid"}), dag_id="terminate_user_group")
    assert result.returncode != 0 and "Invalid input for param subscription_id" in result.stdout + result.stderr
