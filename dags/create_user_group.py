"""create_user_group: orchestrator-core's create UserGroup workflow as an Airflow DAG, one task per step."""

from usergroup.airflow.dags import workflow_dag
from usergroup.workflows.user_group.create_user_group import create_user_group

dag = workflow_dag(create_user_group)
