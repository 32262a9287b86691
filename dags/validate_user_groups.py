"""validate_user_groups: validate_user_group for every active User Group in sync, every night, as an Airflow DAG."""

from usergroup.render import schedule_dag
from usergroup.workflows.validate_user_groups import validate_user_groups

dag = schedule_dag(validate_user_groups)
