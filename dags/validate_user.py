"""validate_user: orchestrator-core's validate User workflow as an Airflow DAG, one task per step."""

from usergroup.airflow.dags import workflow_dag
from usergroup.workflows.user.validate_user import validate_user

dag = workflow_dag(validate_user)
