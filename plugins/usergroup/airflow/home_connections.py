"""The Airflow home's secrets backend: connections from `$AIRFLOW_HOME/connections.json`.

Named in the home's airflow.cfg (`[secrets] backend = usergroup.airflow.home_connections.HomeConnections`) by
`make run`, `make up` and scripts/homeconn.py, so that `usergroup ...` and `airflow ...` find the store and the
OSS/BSS with only AIRFLOW_HOME set. Airflow 3.3 asks a configured backend BEFORE the environment variables, so
this one reads AIRFLOW_CONN_<ID> first: an explicit export still wins. A connection in neither returns None
(Airflow then asks its other backends and, finding none, fails naming the connection id).
"""

import os
from pathlib import Path

from airflow.secrets import BaseSecretsBackend

from usergroup.airflow.home_file import connections_path, read_connections

CONN_ENV_PREFIX = "AIRFLOW_CONN_"


class HomeConnections(BaseSecretsBackend):
    def __init__(self, connections_file: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.connections_file = connections_file

    @property
    def path(self):
        """The home's file (read at each look-up: AIRFLOW_HOME may change), or the one given in backend_kwargs."""
        return connections_path() if self.connections_file is None else Path(self.connections_file)

    def get_conn_value(self, conn_id: str, team_name: str | None = None) -> str | None:
        exported = os.environ.get(CONN_ENV_PREFIX + conn_id.upper())
        if exported:
            return exported
        return read_connections(self.path).get(conn_id)

    def get_variable(self, key: str, team_name: str | None = None) -> str | None:
        return None
