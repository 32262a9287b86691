"""Live Airflow stacks for tests: the `make up` stack (scripts/devstack.py) on a free port, and a variant with
its metadata in a fresh PostgreSQL database and short task heartbeat timeouts, so a killed task is noticed
in seconds. Both stop every process group they started."""

import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from devstack import DAG_ID, Stack, free_port


class LiveAirflow(Stack):
    def __init__(self, home: Path, pg_url: str, extra_env: dict[str, str] | None = None):
        self.meta_db = f"airflow_live_{secrets.token_hex(4)}"
        self._server_url = make_url(pg_url).set(drivername="postgresql+psycopg2")
        meta_url = self._server_url.set(database=self.meta_db).render_as_string(hide_password=False)
        super().__init__(home, port=free_port(), overrides={
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta_url,
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG": "64",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "15",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            **(extra_env or {}),
        })

    def _admin(self, sql: str) -> None:
        engine = create_engine(self._server_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(sql))
        engine.dispose()

    def start_stack(self) -> "LiveAirflow":
        self._admin(f'CREATE DATABASE "{self.meta_db}"')
        try:
            return self.up()
        except Exception:
            self.stop_stack()
            raise

    def stop_stack(self) -> None:
        self.down()
        self._admin(f'DROP DATABASE IF EXISTS "{self.meta_db}" WITH (FORCE)')

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
