"""validate_user_group: orchestrator-core's validate UserGroup workflow as an Airflow DAG, one task per step."""

from usergroup.airflow.dags import workflow_dag
from usergroup.workflows.user_group.validate_user_group import validate_user_group

dag = workflow_dag(validate_user_group)
