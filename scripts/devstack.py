"""A local Airflow for this package: api-server, scheduler, dag-processor and triggerer on 127.0.0.1, and for
`make up` a SCIM server as the identity system the OSS/BSS connection points at (scripts/scim_server.py).

`make up` / `make down` call `up` and `down`; the tests start the same stack on a free port. Each component
runs in a process group of its own and is stopped by group. Airflow's database is a private PostgreSQL in the
Airflow home (scripts/localpg.py) unless one is configured. Settings are tuned for latency on a small machine:
the scheduler sleeps 0.1 s when idle, heartbeats every second, and runs few task processes at once.
"""

import argparse
import fcntl
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import homeconn
import requests
from localpg import LocalPostgres, cluster_folder, free_port, port_taken

from scim_server import ScimServer
from usergroup.engine.discovery import declared
from usergroup.engine.workflow import Schedule
from usergroup.settings import settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DAG_ID = "create_user_group"
# Task logs are read from the local files: no log server, which would listen on every interface.
COMPONENTS = {"api-server": [], "scheduler": ["--skip-serve-logs"], "dag-processor": [],
              "triggerer": ["--skip-serve-logs"]}


HOME_CONNECTIONS = {"AIRFLOW_CONN_USERGROUP_DEFAULT": "usergroup_default",
                    "AIRFLOW_CONN_USERGROUP_OSSBSS": "usergroup_ossbss"}


# The DAG bundles: ours, and examples/dags (paused until an operator unpauses one: subscription_events reacts to
# the subscriptions' asset events, as another pipeline would).
BUNDLES = json.dumps([
    {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {}},
    {"name": "examples", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
     "kwargs": {"path": str(ROOT / "examples" / "dags")}},
])


def tuned_settings(home: Path, port: int) -> dict[str, str]:
    base = f"http://127.0.0.1:{port}"
    return {
        # The store and the OSS/BSS: an export, else the defaults; `up` replaces those by the home's own
        # (connections.json, see scripts/homeconn.py), which commands with only AIRFLOW_HOME read as well.
        "AIRFLOW_CONN_USERGROUP_DEFAULT": (os.environ.get("AIRFLOW_CONN_USERGROUP_DEFAULT")
                                           or homeconn.embedded_store(home)),
        "AIRFLOW_CONN_USERGROUP_OSSBSS": os.environ.get("AIRFLOW_CONN_USERGROUP_OSSBSS") or homeconn.FAKE_OSSBSS,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": BUNDLES,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "8",  # task processes at once: what 2 cores take
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.1",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "15",  # a restarted scheduler adopts tasks quickly
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "PYTHONWARNINGS": "ignore::UserWarning",
        "PYTHONUNBUFFERED": "1",  # the components' logs reach their files as they are written
    }


class Stack:
    """One Airflow home's running components; `overrides` win over the tuned settings."""

    def __init__(self, home: Path, port: int | None = None, overrides: dict[str, str] | None = None,
                 store_slots: int = 4, scim: bool = False):
        self.home = home.resolve()
        self.state_file = self.home / "stack.json"
        state = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        self.port = port or state.get("port") or 8080
        # A SCIM server beside Airflow (`make up`'s identity system), its port in stack.json while the stack runs.
        self.scim_port: int | None = state.get("scim_port") or (free_port() if scim else None)
        self.base = f"http://127.0.0.1:{self.port}"
        self.pids: dict[str, int] = state.get("pids", {})
        self.env = {**os.environ, **tuned_settings(self.home, self.port), **(overrides or {})}
        self.given = {var for var in HOME_CONNECTIONS if var in os.environ or var in (overrides or {})}
        self.store_slots = store_slots  # tasks at once on the store (the embedded SQLite store: few)
        self.pg = LocalPostgres(cluster_folder(self.home))  # Airflow's database, unless one is configured
        self._token: str | None = None

    # -- starting and stopping ----------------------------------------------------------------------

    def unpaused(self) -> list[str]:
        """The DAGs `up` unpauses: every workflow and schedule this package declares."""
        return list(declared())

    @property
    def password(self) -> str:
        path = self.home / "passwords.json"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"admin": secrets.token_urlsafe(12)}))
            path.chmod(0o600)
        return json.loads(path.read_text())["admin"]

    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True,
                                timeout=600, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
        return result

    def running(self) -> bool:
        return any(_alive(pid) for pid in self.pids.values())

    def dead(self) -> list[str]:
        return [name for name, pid in self.pids.items() if not _alive(pid)]

    def metadata(self) -> None:
        """Airflow's database: the one configured (environment or airflow.cfg), else the private PostgreSQL in
        the home, started if it is not running (SQLite does not take concurrent triggers: issue 9)."""
        if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in self.env or _configured_elsewhere(self.home / "airflow.cfg"):
            return
        self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = self.pg.up()

    def use_home_connections(self) -> None:
        """The components run on the home's connections too, exported to them (their task processes do not read
        the home's secrets backend): a `homeconn.py set` takes effect at the next `make up`; an export wins."""
        home_conns = homeconn.read_connections(homeconn.connections_path(self.home))
        for var, conn_id in HOME_CONNECTIONS.items():
            if var not in self.given and conn_id in home_conns:
                self.env[var] = home_conns[conn_id]

    def up(self, timeout: float = 120) -> "Stack":
        """Prepare the home (migrate, store upgrade, DAG serialized and unpaused), start, wait until healthy."""
        _ = self.password
        self.metadata()
        self.airflow("db", "migrate")
        # The home carries its connections (the embedded store unless one is given, the fake OSS/BSS) and its
        # DAG folder: `usergroup ...` and `airflow ...` with only AIRFLOW_HOME set reach this stack's store. After
        # the migration, which writes a new home's airflow.cfg with its secrets (the execution API's JWT: a file
        # written first would have none, and every task would be refused).
        homeconn.setup(self.home, None, None, "AIRFLOW_CONN_USERGROUP_DEFAULT" in self.given,
                       {"dags_folder": str(ROOT / "dags"), "plugins_folder": str(ROOT / "plugins"),
                        "load_examples": "False"})
        homeconn.set_option(self.home / "airflow.cfg", "dag_processor", "dag_bundle_config_list", BUNDLES)
        (self.home / "logs" / "stack").mkdir(parents=True, exist_ok=True)
        if self.scim_port:
            self.start("scim")
            self._save()
            self.point_ossbss_at_scim()
        self.use_home_connections()
        if self.pg.running():  # the airflow command, the usergroup command, anything with this home reaches it
            _pin_metadata(self.home / "airflow.cfg", self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        # The components take seconds to start: they start while the home is made ready, the dag-processor once
        # the DAGs are serialized (it writes them too), and the DAGs are unpaused before this returns.
        for name in ("api-server", "scheduler", "triggerer"):
            self.start(name)
        self._save()  # `make down` finds them if this stops here
        self._together(["usergroup", "db", "upgrade"],
                       ["airflow", "pools", "set", settings().store_pool, str(self.store_slots),
                        "usergroup tasks on the store at once"],
                       ["airflow", "dags", "reserialize"])
        self.start("dag-processor")
        self.pids = {name: self.pids[name] for name in ("scim", *COMPONENTS) if name in self.pids}
        self._save()
        ours = "|".join(map(re.escape, self.unpaused()))  # those of them in the DAG folder
        self.airflow("dags", "unpause", "--treat-dag-id-as-regex", "--yes", f"^({ours})$")
        self.wait_healthy(timeout)
        return self

    def _together(self, *commands: list[str]) -> None:
        """Run these commands of the venv at once; raise naming each that failed, with the end of its stderr."""
        running = []
        for command in commands:
            err = tempfile.TemporaryFile("w+")
            running.append((command, err, subprocess.Popen([str(BIN / command[0]), *command[1:]], env=self.env,
                                                           stdout=subprocess.DEVNULL, stderr=err,
                                                           stdin=subprocess.DEVNULL)))
        failed = []
        for command, err, proc in running:
            if proc.wait(timeout=600):
                err.seek(0)
                failed.append(f"{' '.join(command)} exited {proc.returncode}:\n{err.read()[-3000:]}")
            err.close()
        if failed:
            raise RuntimeError("\n".join(failed))

    def revive(self, timeout: float = 120) -> list[str]:
        """Restart the components that died (and the private PostgreSQL if it stopped); returns their names."""
        dead = self.dead()
        self.metadata()
        for name in dead:
            self.stop(name)  # what is left of its process group
            self.start(name)
        self._save()
        self.wait_healthy(timeout)
        return dead

    def _save(self) -> None:
        self.state_file.write_text(json.dumps({"port": self.port, "pids": self.pids, "scim_port": self.scim_port}))

    @property
    def scim_server(self) -> ScimServer:
        """Its resources are kept in the home (a journal): a restart, `make down` and `make up` keep them."""
        return ScimServer(self.home / "scim" / "resources.jsonl", self.scim_port,
                          self.home / "logs" / "stack" / "scim.log")

    def point_ossbss_at_scim(self) -> None:
        """The home's usergroup_ossbss connection names this SCIM server."""
        homeconn.set_connection(homeconn.connections_path(self.home), "usergroup_ossbss",
                                self.scim_server.connection())

    def start(self, name: str) -> None:
        if name == "scim":
            (self.home / "scim").mkdir(parents=True, exist_ok=True)
            self.pids[name] = self.scim_server.start().process.pid
            return
        log = (self.home / "logs" / "stack" / f"{name}.log").open("a")
        proc = subprocess.Popen([str(BIN / "airflow"), name, *COMPONENTS[name]], env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.pids[name] = proc.pid

    def stop(self, *names: str, grace: float = 30) -> None:
        """Stop these components together: SIGTERM to each one's process group, SIGKILL to what is left after
        `grace` seconds. A scheduler is asked again every 2 s: it exits by raising SystemExit in its SIGTERM
        handler, and raised while a garbage collection callback runs, that is ignored and it runs on (not the
        others: a second SIGTERM forces the triggerer's and the dag-processor's exit, which then hung)."""
        groups = {name: pid for name in names if (pid := self.pids.pop(name, None)) is not None}
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in groups.values():
                _signal(pid, sig, group=True)
            deadline = time.monotonic() + grace
            again = time.monotonic() + 2 if sig == signal.SIGTERM else deadline
            while time.monotonic() < deadline and (groups := {n: p for n, p in groups.items() if _group_alive(p)}):
                if time.monotonic() > again:
                    for name, pid in groups.items():
                        if name.endswith("scheduler") and _alive(pid):
                            _signal(pid, signal.SIGTERM)
                    again = time.monotonic() + 2
                time.sleep(0.2)
            if not groups:
                break

    def down(self) -> None:
        self.stop(*self.pids)
        self.state_file.unlink(missing_ok=True)
        self.pg.stop()

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [n for n, pid in self.pids.items() if not _alive(pid)]
            if dead:
                raise RuntimeError(f"{dead[0]} exited: see {self.home / 'logs' / 'stack' / (dead[0] + '.log')}")
            try:
                health = requests.get(f"{self.base}/api/v2/monitor/health", timeout=2).json()
                if all(health[c]["status"] == "healthy" for c in ("metadatabase", "scheduler", "dag_processor")):
                    return
            except (requests.RequestException, KeyError, ValueError):
                pass
            time.sleep(0.3)
        raise TimeoutError(f"Airflow at {self.base} not healthy after {timeout:.0f}s")

    # -- the REST API v2 --------------------------------------------------------------------------------

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

    def trigger(self, conf: dict, dag_id: str = DAG_ID) -> requests.Response:
        return self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})

    def run_state(self, run_id: str, dag_id: str = DAG_ID) -> str:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}").json()["state"]

    def wait_run(self, run_id: str, timeout: float = 180, dag_id: str = DAG_ID) -> str:
        deadline, state = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            state = self.run_state(run_id, dag_id)
            if state in ("success", "failed"):
                return state
            time.sleep(0.2)
        raise TimeoutError(f"run {run_id} still {state} after {timeout}s")


class PostgresStack(Stack):
    """The same stack with its metadata in a fresh PostgreSQL database (dropped by `stop_stack`), more task
    processes at once (PostgreSQL takes them), short task heartbeat timeouts (a killed task is noticed in
    seconds), and the DAG files not parsed again every 30 s (~8 CPU-s in two minutes on 2 cores). For the tests and the
    benchmark."""

    def __init__(self, home: Path, server_url: str, overrides: dict[str, str] | None = None):
        from sqlalchemy.engine import make_url

        self.meta_db = f"airflow_{secrets.token_hex(4)}"
        self._server_url = make_url(server_url).set(drivername="postgresql+psycopg2")
        meta_url = self._server_url.set(database=self.meta_db).render_as_string(hide_password=False)
        super().__init__(home, port=free_port(), store_slots=8, overrides={
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta_url,
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG": "64",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "15",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",  # parsed at the start; nobody edits them
            **(overrides or {}),
        })

    def unpaused(self) -> list[str]:
        """Not the schedules: a scheduled run would take subscriptions out of sync under the tests (a test
        unpauses a schedule when it means to)."""
        return triggered()

    def _admin(self, sql: str) -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(self._server_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(sql))
        engine.dispose()

    def start_stack(self) -> "PostgresStack":
        self._admin(f'CREATE DATABASE "{self.meta_db}"')
        try:
            return self.up()
        except Exception:
            self.stop_stack()
            raise

    def stop_stack(self) -> None:
        self.down()
        self._admin(f'DROP DATABASE IF EXISTS "{self.meta_db}" WITH (FORCE)')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of ours counts as gone
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


def _signal(pid: int, sig: int, group: bool = False) -> None:
    try:
        (os.killpg if group else os.kill)(pid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    try:  # reap the leader if it is our child: a zombie would keep the group "alive"
        os.waitpid(pgid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _configured_elsewhere(cfg: Path) -> bool:
    """airflow.cfg names a database that is neither SQLite nor the private PostgreSQL: the user's own."""
    if not cfg.exists():
        return False
    found = re.search(r"^sql_alchemy_conn\s*=\s*(\S+)", cfg.read_text(), re.MULTILINE)
    return bool(found) and not re.match(r"sqlite:|postgresql\+psycopg2://postgres@127\.0\.0\.1:\d+/airflow$",
                                        found.group(1))


def _pin_metadata(cfg: Path, url: str) -> None:
    text = cfg.read_text()
    line = f"sql_alchemy_conn = {url}"
    text, found = re.subn(r"^sql_alchemy_conn\s*=.*$", line, text, count=1, flags=re.MULTILINE)
    if not found:
        text = text.replace("[database]\n", f"[database]\n{line}\n", 1) if "[database]\n" in text \
            else f"{text}\n[database]\n{line}\n"
    cfg.write_text(text)


def wants_scim(home: Path) -> bool:
    """`make up`'s identity system is a SCIM server of its own unless the OSS/BSS's connection is exported, or the
    home's names another OSS/BSS than the fake or an earlier `make up`'s SCIM server (a production endpoint, say)."""
    if "AIRFLOW_CONN_USERGROUP_OSSBSS" in os.environ:
        return False
    current = json.loads(homeconn.read_connections(homeconn.connections_path(home)).get("usergroup_ossbss") or "{}")
    return not current or current.get("conn_type") == "usergroup_fake_ossbss" or (
        current.get("conn_type") == "usergroup_scim" and current.get("host") == "http://127.0.0.1")


def triggered() -> list[str]:
    """The DAGs run when triggered: the workflows and the bulk runs (not the schedules)."""
    return sorted(name for name, w in declared().items() if not isinstance(w, Schedule))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--purge", action="store_true", help="down: also remove the private PostgreSQL's data")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8080))
    args = parser.parse_args()
    home = Path(os.environ["AIRFLOW_HOME"])
    stack = Stack(home)
    if args.command == "down":
        was = stack.running() or stack.pg.running()
        stack.down()
        if args.purge:
            stack.pg.purge()
        print(f"make down: {'stopped' if was else 'nothing was running for'} {home}", file=sys.stderr)
        return 0
    home.mkdir(parents=True, exist_ok=True)
    lock = (home / "stack.lock").open("w")  # held until this process exits
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"make up: another `make up` is starting the stack of {home}; wait for it (or stop it with Ctrl-C)",
              file=sys.stderr)
        return 1
    if stack.running():  # started before: check each component, restart the dead ones
        try:
            restarted = stack.revive()
        except Exception as exc:
            print(f"make up: the stack at {stack.base} is not healthy and could not be mended: {exc}\n"
                  f"  dead: {', '.join(stack.dead()) or 'none'}; logs: {home / 'logs' / 'stack'}; "
                  "`make down` then `make up` starts afresh", file=sys.stderr)
            return 1
        said = f"restarted {', '.join(restarted)}" if restarted else "every component alive and healthy"
        print(f"make up: already running at {stack.base}: {said} (make down stops it)", file=sys.stderr)
        return 0
    stack = Stack(home, port=args.port, scim=wants_scim(home))
    if taken := port_taken(stack.port):
        print(f"make up: 127.0.0.1:{stack.port} is taken ({taken}): `PORT=<another> make up` uses another port",
              file=sys.stderr)
        return 1
    started = time.monotonic()
    try:
        stack.up()
    except Exception as exc:  # stop what started, and say why in a few lines (the logs have the rest)
        stack.down()
        print(f"make up: the stack did not start: {exc}\n  logs: {home / 'logs' / 'stack'}", file=sys.stderr)
        return 1
    except BaseException:  # Ctrl-C: stop what started
        stack.down()
        raise
    scheduled = [name for name in stack.unpaused() if name not in triggered()]
    print(f"Airflow is up at {stack.base} in {time.monotonic() - started:.0f} s\n"
          f"  ready to trigger: {', '.join(triggered())}\n"
          f"  scheduled:        {', '.join(scheduled)}\n"
          f"  login: admin / {stack.password}\n"
          f"  logs:  {home / 'logs' / 'stack'}\n  stop:  make down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
