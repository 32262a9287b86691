"""The usergroup Airflow plugin: its listener keeps each workflow's process in line with its DAG run; its FastAPI
app serves orchestrator-core's REST API at /orchestrator/api and the Subscriptions pages at /orchestrator/ui, behind
Airflow's login, shown inside Airflow's UI (a nav entry, and a Process tab on every DAG run)."""

from airflow.plugins_manager import AirflowPlugin

from usergroup.airflow import listener
from usergroup.interfaces.app import api


class UserGroupPlugin(AirflowPlugin):
    name = "usergroup"
    listeners = [listener]
    fastapi_apps = [{"app": api, "url_prefix": "/orchestrator", "name": "orchestrator-core API"}]
    external_views = [
        {"name": "Subscriptions", "href": "/orchestrator/ui/subscriptions", "destination": "nav",
         "url_route": "subscriptions", "nav_top_level": True},
        {"name": "Process", "href": "/orchestrator/ui/runs/{DAG_ID}/{RUN_ID}", "destination": "dag_run",
         "url_route": "process"},
    ]
