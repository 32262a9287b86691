"""terminate_user_group: orchestrator-core's terminate UserGroup workflow as an Airflow DAG, one task per step."""

from usergroup.airflow.dags import workflow_dag
from usergroup.workflows.user_group.terminate_user_group import terminate_user_group

dag = workflow_dag(terminate_user_group)
