"""The usergroup Airflow plugin: its listener keeps each workflow's process in line with its DAG run."""

from airflow.plugins_manager import AirflowPlugin

from usergroup import listener


class UserGroupPlugin(AirflowPlugin):
    name = "usergroup"
    listeners = [listener]
