"""The compose topology without containers: PostgreSQL and Redis (the local ones), and as processes on
127.0.0.1 the api-server, scheduler, dag-processor, triggerer and two Celery workers, configured from the
compose file's own environment (read, not copied). 30 runs; one worker killed with SIGKILL mid-flight."""

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from devstack import Stack, free_port
from helpers import ROOT, pg_url
from usergroup.engine.discovery import declared
from usergroup.ossbss.fake import FakeOssBss
from usergroup.store import tables
from usergroup.store.connect import create_store_engine
from usergroup.store.repository import Store

pytestmark = [pytest.mark.live, pytest.mark.xdist_group("live")]  # live: not in test-fast; one worker

RUNS, WORKERS = 30, ["worker-1", "worker-2"]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
HERE = Path(__file__).resolve().parent


def substitute(value: str, variables: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, and $$ for a literal $."""
    def one(m):
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if name in variables:
            return variables[name]
        if op == ":-":
            return arg
        raise KeyError(f"{name} is not set: {arg}")
    return re.sub(r"\$\$|\$\{(\w+)(?:(:[-?])([^}]*))?\}", one, value)


def loopback_env(home: Path, port: int, meta_db: str, store_schema: str, redis_db: int) -> dict[str, str]:
    """The Airflow services' environment from the compose file, with the compose network's names replaced by
    this machine's services; every other value is the file's own."""
    server = make_url(pg_url()).set(drivername="postgresql+psycopg2")
    variables = {"POSTGRES_PASSWORD": secrets.token_urlsafe(12), "AIRFLOW_FERNET_KEY": _fernet(),
                 "AIRFLOW_JWT_SECRET": secrets.token_urlsafe(32), "AIRFLOW_API_SECRET_KEY": secrets.token_urlsafe(32)}
    env = {k: substitute(str(v), variables) for k, v in SERVICES["airflow-scheduler"]["environment"].items()}

    def on_loopback(url: str, database: str, **query) -> str:
        prefix, _, rest = url.rpartition("db+") if url.startswith("db+") else ("", "", url)
        u = make_url(rest).set(host=server.host, port=server.port, username=server.username,
                               password=server.password, database=database)
        if query:
            u = u.update_query_dict(query)
        return ("db+" if url.startswith("db+") else "") + u.render_as_string(hide_password=False)

    base = f"http://127.0.0.1:{port}"
    translated = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": on_loopback(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], meta_db),
        "AIRFLOW__CELERY__RESULT_BACKEND": on_loopback(env["AIRFLOW__CELERY__RESULT_BACKEND"], meta_db),
        "AIRFLOW__CELERY__BROKER_URL": env["AIRFLOW__CELERY__BROKER_URL"].replace(
            "redis://redis:6379/0", f"redis://127.0.0.1:6379/{redis_db}"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].replace(
            "http://airflow-apiserver:8080", base),
        "AIRFLOW_CONN_USERGROUP_DEFAULT": on_loopback(env["AIRFLOW_CONN_USERGROUP_DEFAULT"], server.database,
                                                      db_schema=store_schema).replace("+psycopg2", ""),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": env[
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].replace("/opt/airflow/config", str(home)),
    }
    assert set(translated) <= set(env)
    return {**env, **translated}


def _fernet() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


@pytest.fixture(scope="module")
def topology(tmp_path_factory):
    """The topology, started once for the module: the API's create runs after the kill, on the worker left."""
    if not pg_url():
        pytest.skip("USERGROUP_TEST_DATABASE_URL not set")
    home, port = tmp_path_factory.mktemp("topology") / "home", free_port()
    home.mkdir()
    meta_db, store_schema, redis_db = f"airflow_topo_{secrets.token_hex(4)}", f"ug_topo_{secrets.token_hex(4)}", \
        5 + secrets.randbelow(10)
    env = loopback_env(home, port, meta_db, store_schema, redis_db)
    # The machine's side of the volumes and ports, test-speed failure detection, the DAG files parsed once.
    env.update({
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "15",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "30",  # a task the killed worker had taken but not started
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "30",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "topology_host.name",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
        "AIRFLOW__CORE__PARALLELISM": "32",  # Airflow's default, as in the compose deployment (not make up's 4)
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT / "plugins")]),
    })
    stack = Stack(home, port=port, overrides=env)
    server = create_engine(make_url(pg_url()).set(drivername="postgresql+psycopg2"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{meta_db}"'))
    procs: dict[str, subprocess.Popen] = {}
    try:
        _ = stack.password
        init = subprocess.run(["bash", *[substitute(c, {}) for c in SERVICES["airflow-init"]["command"]]], env={
            **stack.env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}, capture_output=True,
            text=True, timeout=600)
        assert init.returncode == 0, init.stderr[-3000:]
        # Log servers listen on every interface: off here (the logs are local files on this one machine).
        extra_args = {"airflow-scheduler": ["--skip-serve-logs"], "airflow-triggerer": ["--skip-serve-logs"]}
        for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
            procs[name] = _start(stack, name, SERVICES[name]["command"].split() + extra_args.get(name, []), {})
        for worker in WORKERS:  # two workers on one host: a Celery name and a recorded hostname of their own
            procs[worker] = _start(stack, worker, [*SERVICES["airflow-worker"]["command"].split(), "--concurrency",
                                                   "4", "--celery-hostname", f"{worker}@%h", "--skip-serve-logs"],
                                   {"TOPOLOGY_WORKER": worker})
        stack.wait_healthy()
        yield stack, procs, create_store_engine(env["AIRFLOW_CONN_USERGROUP_DEFAULT"].replace(
            "postgresql://", "postgresql+psycopg2://").split("?")[0], store_schema), store_schema
    finally:
        stack.down()
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{meta_db}" WITH (FORCE)'))
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{store_schema}" CASCADE'))
        server.dispose()
        subprocess.run(["redis-cli", "-n", str(redis_db), "FLUSHDB"], capture_output=True)


def _start(stack: Stack, name: str, args: list[str], extra: dict[str, str]) -> subprocess.Popen:
    """A component in a process group of its own, registered with the stack at once so `down` stops it."""
    log = (stack.home / f"{name}.log").open("a")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "airflow"), *args], env={**stack.env, **extra},
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    stack.pids[name] = proc.pid
    return proc


def test_thirty_runs_on_two_celery_workers_one_killed(topology):
    stack, procs, engine, store_schema = topology
    store = Store(engine)
    paused = stack.api("GET", "/dags", params={"paused": "true", "limit": 100}).json()["dags"]
    assert not {d["dag_id"] for d in paused} & set(declared()), "the init service left workflows paused"
    # The init service unpaused the nightly validation too: it runs at once for the last midnight (on the empty
    # store). Let it end first, so that it validates none of the groups below.
    deadline = time.monotonic() + 180
    while not (nightly := stack.api("GET", "/dags/validate_user_groups/dagRuns").json()["dag_runs"]):
        assert time.monotonic() < deadline, "the init service did not unpause validate_user_groups"
        time.sleep(1)
    assert nightly[0]["run_type"] == "scheduled"
    assert stack.wait_run(nightly[0]["dag_run_id"], dag_id="validate_user_groups") == "success"
    started = time.monotonic()
    names = [f"Topology {i:02d}" for i in range(RUNS)]
    runs = []
    for name in names:
        r = stack.trigger({"group_name": name})
        assert r.status_code == 200, r.text
        runs.append(r.json()["dag_run_id"])

    # Kill worker-1 once it is in the middle of things: it has finished steps and has tasks running.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        with store.transaction() as repo:
            done_on_1 = [s for p in repo.list_processes() for s in repo.steps_of(p["process_id"])
                         if s["hostname"] == "worker-1"]
        running = stack.api("GET", "/dags/create_user_group/dagRuns/~/taskInstances",
                            params={"state": "running", "limit": 100}).json()["task_instances"]
        if len(done_on_1) >= 10 and any(t.get("hostname") == "worker-1" for t in running):
            break
        time.sleep(0.5)
    else:
        pytest.fail("worker-1 never got going")
    os.killpg(procs["worker-1"].pid, signal.SIGKILL)
    killed_at = time.monotonic() - started
    killed_in_flight = [t["task_id"] for t in running if t.get("hostname") == "worker-1"]

    states = {r: stack.wait_run(r, timeout=900) for r in runs}
    elapsed = time.monotonic() - started
    assert [r for r, s in states.items() if s != "success"] == []
    with store.transaction() as repo:
        subs = repo.list_subscriptions()
        assert sorted(s.user_group.group_name for s in subs) == names  # each once: none lost, none duplicated
        assert all(s.status == "active" and s.insync for s in subs)
        assert repo.count(tables.processes) == RUNS and repo.count(tables.processes_subscriptions) == RUNS
        steps = [s for p in repo.list_processes() for s in repo.steps_of(p["process_id"])]
    groups = FakeOssBss(engine.url, store_schema).groups()
    assert len(groups) == RUNS and len({g["subscription_id"] for g in groups}) == RUNS
    by_worker = {w: sum(1 for s in steps if s["hostname"] == w and s["status"] == "success") for w in WORKERS}
    assert set(s["hostname"] for s in steps) <= set(WORKERS) and all(by_worker.values())
    figures = {"runs": RUNS, "workers": len(WORKERS), "kills": 1, "killed_at_s": round(killed_at, 1),
               "tasks_in_flight_on_killed_worker": killed_in_flight, "elapsed_s": round(elapsed, 1),
               "successful_steps_by_worker": by_worker, "step_rows": len(steps),
               "runs_per_min": round(RUNS / elapsed * 60, 1)}
    (ROOT / "artifacts").mkdir(exist_ok=True)
    (ROOT / "artifacts" / "topology.json").write_text(json.dumps(figures, indent=2))
    print("topology:", json.dumps(figures))


def test_one_create_over_the_orchestrator_api(topology):
    """The plugin's API on the compose topology's api-server: a create started by POST completes on a worker."""
    stack = topology[0]
    base, headers = f"{stack.base}/orchestrator/api", {"Authorization": f"Bearer {stack.token()}"}
    response = requests.post(f"{base}/processes/create_user_group", headers=headers, timeout=30,
                             json=[{"product": "6b3c3a1e-5d0f-4e43-9a2f-2f1e0a8b7c01"}, {"group_name": "Topology API"}])
    assert response.status_code == 201, response.text
    deadline, process = time.monotonic() + 180, {}
    while time.monotonic() < deadline and process.get("last_status") not in ("completed", "failed", "aborted"):
        process = requests.get(f"{base}/processes/{response.json()['id']}", headers=headers, timeout=30).json()
        time.sleep(0.3)
    assert process["last_status"] == "completed", process
    (sub,) = process["subscriptions"]
    model = requests.get(f"{base}/subscriptions/domain-model/{sub['subscription_id']}", headers=headers,
                         timeout=30).json()
    assert (model["status"], model["user_group"]["group_name"]) == ("active", "Topology API")
