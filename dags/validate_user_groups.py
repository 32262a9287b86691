"""validate_user_groups: validate_user_group for every active User Group in sync, every night, as an Airflow DAG."""

from usergroup.airflow.dags import schedule_dag
from usergroup.workflows.user_group.validate_user_groups import validate_user_groups

dag = schedule_dag(validate_user_groups)
