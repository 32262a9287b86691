"""Live Airflow for tests: scripts/devstack.py's PostgreSQL stack with the REST calls the tests make, and a
PostgreSQL server of the test's own."""

import shutil
import tempfile
from pathlib import Path

from localpg import LocalPostgres

from devstack import DAG_ID, PostgresStack


class LiveAirflow(PostgresStack):
    def task_states(self, run_id: str, dag_id: str = DAG_ID) -> dict[str, str]:
        tis = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()
        return {ti["task_id"]: ti["state"] for ti in tis["task_instances"]}

    def dag_run_count(self, dag_id: str = DAG_ID) -> int:
        return self.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 1}).json()["total_entries"]

    def clear_failed(self, run_id: str, task_ids: list[str], dag_id: str = DAG_ID):
        return self.api("POST", f"/dags/{dag_id}/clearTaskInstances", json={
            "dag_run_id": run_id, "task_ids": task_ids, "dry_run": False, "only_failed": True,
            "reset_dag_runs": True, "include_downstream": True})


class OwnPostgres(LocalPostgres):
    """A PostgreSQL server of the test's own (scripts/localpg.py in a temporary folder, 127.0.0.1, a free port
    kept across restarts), so it can be stopped and started under a running workflow."""

    def __init__(self):
        folder = Path(tempfile.mkdtemp(prefix="usergroup-own-pg-"))
        folder.chmod(0o755)  # its server runs as the postgres user when the tests run as root
        super().__init__(folder)

    def init(self) -> "OwnPostgres":
        self.up("postgres")
        return self

    def start(self) -> None:
        self.up("postgres")

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)
