"""terminate_user: orchestrator-core's terminate User workflow as an Airflow DAG, one task per step."""

from usergroup.render import workflow_dag
from usergroup.workflows.terminate_user import terminate_user

dag = workflow_dag(terminate_user)
