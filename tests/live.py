"""Live Airflow for tests: scripts/devstack.py's PostgreSQL stack with the REST calls the tests make, and a
PostgreSQL server of the test's own."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from devstack import DAG_ID, PostgresStack, free_port


class LiveAirflow(PostgresStack):
    def task_states(self, run_id: str) -> dict[str, str]:
        tis = self.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances").json()
        return {ti["task_id"]: ti["state"] for ti in tis["task_instances"]}

    def dag_run_count(self) -> int:
        return self.api("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 1}).json()["total_entries"]

    def clear_failed(self, run_id: str, task_ids: list[str]):
        return self.api("POST", f"/dags/{DAG_ID}/clearTaskInstances", json={
            "dag_run_id": run_id, "task_ids": task_ids, "dry_run": False, "only_failed": True,
            "reset_dag_runs": True, "include_downstream": True})


class OwnPostgres:
    """A PostgreSQL server of the test's own (initdb in a temporary folder, 127.0.0.1, a free port), so it can
    be stopped and started under a running workflow without touching the machine's server."""

    def __init__(self):
        (self.bin,) = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1:]
        self.folder = Path(tempfile.mkdtemp(prefix="usergroup-own-pg-"))  # not below a root-only folder
        self.data, self.port = self.folder / "data", free_port()
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    def init(self) -> "OwnPostgres":
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust")
        return self.start()

    def start(self) -> "OwnPostgres":
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.folder / "pg.log"),
                          "-o", f"-h 127.0.0.1 -p {self.port} -k {self.folder}", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-m", mode, "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)
