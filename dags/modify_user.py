"""modify_user: orchestrator-core's modify User workflow as an Airflow DAG, one task per step."""

from usergroup.render import workflow_dag
from usergroup.workflows.modify_user import modify_user

dag = workflow_dag(modify_user)
