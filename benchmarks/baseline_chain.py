"""baseline_chain: the bare chain create_user_group is measured against: seven no-op TaskFlow tasks that pass
the same state dict through XCom, with the same schedule, params and retries, and no store."""

from datetime import timedelta

from airflow.sdk import Param, dag, task


@task
def first(params=None, dag_run=None):
    return {"process_id": dag_run.run_id, "workflow_name": dag_run.dag_id, "workflow_target": "CREATE",
            "group_name": params["group_name"]}


@task
def step(state: dict):
    return {**state, "subscription": {"status": "initial", "insync": False}}


@dag(dag_id="baseline_chain", schedule=None, catchup=False, tags=["usergroup", "benchmark"],
     default_args={"retries": 2, "retry_delay": timedelta(seconds=5)},
     params={"group_name": Param(type="string", minLength=1, maxLength=255)})
def baseline_chain():
    state = first.override(task_id="create_subscription")()
    for name in ("store_process_subscription", "initialize_subscription", "provision_user_group", "set_status",
                 "resync", "done"):
        state = step.override(task_id=name)(state)


baseline_chain()
