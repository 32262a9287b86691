"""create_user_groups: create_user_group for many names in one run, as an Airflow DAG: each task its step for all."""

from usergroup.airflow.dags import bulk_dag
from usergroup.workflows.user_group.create_user_groups import create_user_groups

dag = bulk_dag(create_user_groups)
