"""validate_users: validate_user for every active User in sync, every night, as an Airflow DAG."""

from usergroup.airflow.dags import schedule_dag
from usergroup.workflows.user.validate_users import validate_users

dag = schedule_dag(validate_users)
