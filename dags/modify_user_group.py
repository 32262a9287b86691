"""modify_user_group: orchestrator-core's modify UserGroup workflow as an Airflow DAG, one task per step."""

from usergroup.airflow.dags import workflow_dag
from usergroup.workflows.user_group.modify_user_group import modify_user_group

dag = workflow_dag(modify_user_group)
