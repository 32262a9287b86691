"""validate_user_group: orchestrator-core's validate UserGroup workflow as an Airflow DAG, one task per step."""

from usergroup.render import workflow_dag
from usergroup.workflows.validate_user_group import validate_user_group

dag = workflow_dag(validate_user_group)
