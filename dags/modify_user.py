"""modify_user: orchestrator-core's modify User workflow as an Airflow DAG, one task per step."""

from usergroup.airflow.dags import workflow_dag
from usergroup.workflows.user.modify_user import modify_user

dag = workflow_dag(modify_user)
