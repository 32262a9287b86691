"""terminate_user: orchestrator-core's terminate User workflow as an Airflow DAG, one task per step."""

from usergroup.airflow.dags import workflow_dag
from usergroup.workflows.user.terminate_user import terminate_user

dag = workflow_dag(terminate_user)
