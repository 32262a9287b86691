"""create_user: orchestrator-core's create User workflow as an Airflow DAG, one task per step."""

from usergroup.airflow.dags import workflow_dag
from usergroup.workflows.user.create_user import create_user

dag = workflow_dag(create_user)
