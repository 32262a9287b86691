"""A live Airflow for tests: api-server, scheduler and dag-processor as processes on 127.0.0.1.

Each component runs in its own process group and is stopped by group. Settings are the latency-tuned ones
(scheduler idle sleep, small parallelism, 1 s heartbeats) and short task heartbeat timeouts, so a killed task
is noticed in seconds. The metadata database is a fresh PostgreSQL database, dropped afterwards.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
COMPONENTS = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler"],
    "dag-processor": ["dag-processor"],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveAirflow:
    def __init__(self, home: Path, pg_url: str, extra_env: dict[str, str] | None = None):
        self.home, self.port = home, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(12)
        self.meta_db = f"airflow_live_{secrets.token_hex(4)}"
        self._server_url = make_url(pg_url).set(drivername="postgresql+psycopg2")
        self.procs: dict[str, subprocess.Popen] = {}
        self._token: str | None = None
        home.mkdir(parents=True, exist_ok=True)
        (home / "passwords.json").write_text(json.dumps({"admin": self.password}))
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")},
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self._server_url.set(database=self.meta_db).render_as_string(
                hide_password=False),
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG": "64",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "15",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "PYTHONWARNINGS": "ignore::UserWarning",
            **(extra_env or {}),
        }

    # -- life cycle ---------------------------------------------------------------------------------

    def airflow(self, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        result = subprocess.run([str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True,
                                timeout=300, **kw)
        if check and result.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
        return result

    def start(self) -> "LiveAirflow":
        engine = create_engine(self._server_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.meta_db}"'))
        engine.dispose()
        self.airflow("db", "migrate")
        self.airflow("dags", "reserialize")
        self.airflow("dags", "unpause", "create_user_group")
        for name, args in COMPONENTS.items():
            self.start_component(name, args)
        self.wait_healthy()
        return self

    def start_component(self, name: str, args: list[str]) -> None:
        log = (self.home / f"{name}.log").open("a")
        self.procs[name] = subprocess.Popen([str(BIN / "airflow"), *args], env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited {proc.returncode}: {self.log_tail(name)}")
            try:
                health = requests.get(f"{self.base}/api/v2/monitor/health", timeout=2).json()
                if health["scheduler"]["status"] == "healthy" and health["dag_processor"]["status"] == "healthy":
                    return
            except (requests.RequestException, KeyError, ValueError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"Airflow not healthy after {timeout}s: {self.log_tail('scheduler')}")

    def stop_component(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        try:
            os.killpg(proc.pid, sig)
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        for name in list(self.procs):
            self.stop_component(name)
        engine = create_engine(self._server_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.meta_db}" WITH (FORCE)'))
        engine.dispose()

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    # -- REST API v2 -----------------------------------------------------------------------------------

    def token(self) -> str:
        if self._token is None:
            r = requests.post(f"{self.base}/auth/token", json={"username": "admin", "password": self.password},
                              timeout=10)
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kw) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token()}", **kw.pop("headers", {})}
        return requests.request(method, f"{self.base}/api/v2{path}", headers=headers, timeout=30, **kw)

    def trigger(self, conf: dict, run_id: str | None = None) -> requests.Response:
        body = {"logical_date": None, "conf": conf}
        if run_id:
            body["dag_run_id"] = run_id
        return self.api("POST", "/dags/create_user_group/dagRuns", json=body)

    def run_state(self, run_id: str) -> str:
        return self.api("GET", f"/dags/create_user_group/dagRuns/{run_id}").json()["state"]

    def wait_run(self, run_id: str, timeout: float = 180, until=("success", "failed")) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run_state(run_id)
            if state in until:
                return state
            time.sleep(0.5)
        raise TimeoutError(f"run {run_id} still {state} after {timeout}s")

    def task_states(self, run_id: str) -> dict[str, str]:
        tis = self.api("GET", f"/dags/create_user_group/dagRuns/{run_id}/taskInstances").json()
        return {ti["task_id"]: ti["state"] for ti in tis["task_instances"]}

    def dag_run_count(self) -> int:
        return self.api("GET", "/dags/create_user_group/dagRuns", params={"limit": 1}).json()["total_entries"]

    def clear_failed(self, run_id: str, task_ids: list[str]) -> requests.Response:
        return self.api("POST", "/dags/create_user_group/clearTaskInstances", json={
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
