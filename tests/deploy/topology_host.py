"""The hostname Airflow records for a task (`[core] hostname_callable`): in the loopback topology every worker
runs on this one machine, so each gets a name of its own, as each container has in the compose deployment."""

import os
import socket


def name() -> str:
    return os.environ.get("TOPOLOGY_WORKER") or socket.getfqdn()
