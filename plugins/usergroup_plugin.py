"""The usergroup Airflow plugin: its listener keeps each workflow's process in line with its DAG run; its FastAPI
app serves orchestrator-core's REST API at /orchestrator, behind Airflow's login."""

from airflow.plugins_manager import AirflowPlugin

from usergroup import listener
from usergroup.api import api


class UserGroupPlugin(AirflowPlugin):
    name = "usergroup"
    listeners = [listener]
    fastapi_apps = [{"app": api, "url_prefix": "/orchestrator", "name": "orchestrator-core API"}]
