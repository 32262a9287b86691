"""task_cost: our CPU per task of create_user_group, each task in a fresh process as Airflow runs it.

Each measure runs in a new interpreter that has already imported what a task process finds imported (`preload()`:
by default as a LocalExecutor worker forks it from the scheduler, our plugin's preload included): the DAG file's
parse (runpy, against benchmarks/baseline_chain.py), then each of the seven tasks' bodies in turn,
one process per task, on one run whose state passes from task to task (as XCom passes it), against a real
PostgreSQL store. CPU is process time (the machine is shared), the median of REPEATS runs; the statements a task
sends are counted at the DBAPI (every cursor.execute: the dialect's first-connect queries too) and through
SQLAlchemy (`before_cursor_execute`), with the transactions it commits.

    python benchmarks/task_cost.py postgresql://postgres@127.0.0.1:5432/ugprof [--repeats 15] [--no-bytecode]
        [--preload worker|runner|sdk]

The database must hold a migrated store (`usergroup db upgrade`, with the fake OSS/BSS's tables beside it). By
default the children read and write bytecode in a private cache (as a deployment whose package pip compiled);
--no-bytecode compiles every source in every process, as PYTHONDONTWRITEBYTECODE=1 on a source checkout does."""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from uuid import uuid4

ROOT = Path(__file__).resolve().parent.parent
OURS, BASE = ROOT / "dags" / "create_user_group.py", ROOT / "benchmarks" / "baseline_chain.py"
CUSTOMER = "8f4b1a52-2c7e-4d1c-9a3e-0b6f5d2e7c10"
PHASES = ("services", "get_connection", "connect", "dialect_init", "oss_engine", "compile", "run_step", "body")


def preload() -> None:
    """What the task process has imported before it parses the DAG file (USERGROUP_TASK_COST_PRELOAD): `sdk`, the
    SDK only (as `make bench` parses); `runner`, forked from the supervisor, the supervisor and the task runner
    too; `worker` (the default), forked from a LocalExecutor worker, which was forked from the scheduler: our
    plugin, and what our listener preloads as the scheduler's job starts, too."""
    import airflow.sdk  # noqa: F401

    mode = os.environ.get("USERGROUP_TASK_COST_PRELOAD", "worker")
    if mode != "sdk":
        import airflow.sdk.execution_time.supervisor
        import airflow.sdk.execution_time.task_runner  # noqa: F401
    if mode == "worker":
        import usergroup_plugin  # noqa: F401

        from usergroup.airflow.listener import on_starting

        on_starting(type("Job", (), {})())


def child_parse(dag_file: str) -> dict:
    import runpy

    preload()
    before = set(sys.modules)
    t = time.process_time()
    runpy.run_path(dag_file)
    return {"parse_ms": (time.process_time() - t) * 1000, "modules": len(set(sys.modules) - before)}


def child_task(task_id: str, state_file: str, run_id: str, group_name: str) -> dict:
    """Parse the DAG file, then run the task's body as Airflow calls it, timing its parts (inclusive) and
    counting its statements."""
    import runpy
    from types import SimpleNamespace

    preload()
    t = time.process_time()
    dag = runpy.run_path(str(OURS))["dag"]
    parse_ms = (time.process_time() - t) * 1000

    import psycopg2
    import psycopg2.extensions
    from airflow.sdk import BaseHook
    from sqlalchemy import Engine, event
    from sqlalchemy.dialects.postgresql.psycopg2 import PGDialect_psycopg2
    from sqlalchemy.sql.compiler import SQLCompiler

    import usergroup.airflow.tasks
    from usergroup.ossbss.fake import FakeOssBss

    cpu = dict.fromkeys(PHASES, 0.0)
    count = {"dbapi": 0, "sqlalchemy": 0, "commits": 0, "rollbacks": 0, "connections": 0, "compiles": 0}
    sql: list[str] = []

    def timed(phase, func, counter=None):
        def wrapper(*args, **kwargs):
            if counter:
                count[counter] += 1
            start = time.process_time()
            try:
                return func(*args, **kwargs)
            finally:
                cpu[phase] += (time.process_time() - start) * 1000

        return wrapper

    class CountingCursor(psycopg2.extensions.cursor):
        def execute(self, query, vars=None):
            count["dbapi"] += 1
            return super().execute(query, vars)

    connect = psycopg2.connect

    def counted_connect(*args, **kwargs):
        conn = connect(*args, **kwargs)
        conn.cursor_factory = CountingCursor
        return conn

    psycopg2.connect = timed("connect", counted_connect, "connections")
    PGDialect_psycopg2.initialize = timed("dialect_init", PGDialect_psycopg2.initialize)
    SQLCompiler.__init__ = timed("compile", SQLCompiler.__init__, "compiles")
    BaseHook.get_connection = classmethod(timed("get_connection", BaseHook.get_connection.__func__))
    usergroup.airflow.tasks.services = timed("services", usergroup.airflow.tasks.services)
    usergroup.airflow.tasks.run_step = timed("run_step", usergroup.airflow.tasks.run_step)
    oss_engine = FakeOssBss.engine
    FakeOssBss.engine = property(lambda self: self.__dict__.get("_engine") or self.__dict__.setdefault(
        "_engine", timed("oss_engine", oss_engine.func)(self)))

    @event.listens_for(Engine, "before_cursor_execute")
    def _statement(conn, cursor, statement, parameters, context, executemany):
        count["sqlalchemy"] += 1
        sql.append(" ".join(statement.split())[:90])

    event.listen(Engine, "commit", lambda conn: count.__setitem__("commits", count["commits"] + 1))
    event.listen(Engine, "rollback", lambda conn: count.__setitem__("rollbacks", count["rollbacks"] + 1))

    body = dag.get_task(task_id).python_callable
    dag_run = SimpleNamespace(dag_id=dag.dag_id, run_id=run_id, run_type="manual", triggering_user_name="task_cost",
                              conf={"group_name": group_name})
    ti = SimpleNamespace(try_number=1, map_index=-1, hostname="task_cost")
    state = json.loads(Path(state_file).read_text()) if state_file else None
    args = () if state is None else (state,)
    start = time.process_time()
    result = body(*args, params={"group_name": group_name}, dag_run=dag_run, ti=ti)
    cpu["body"] = (time.process_time() - start) * 1000
    if state_file:
        Path(state_file).write_text(json.dumps(result))
    return {"parse_ms": parse_ms, "cpu": cpu, "count": count, "sql": sql}


def run_child(args: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], env=env, capture_output=True, text=True,
                         cwd=ROOT)
    if out.returncode:
        raise SystemExit(f"task_cost: child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.splitlines()[-1])


def child_env(url: str, home: str, bytecode: bool) -> dict[str, str]:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = {"conn_type": "postgres", "host": u.host, "port": u.port or 5432, "login": u.username,
            "password": u.password or "", "schema": u.database}
    env = {**os.environ, "AIRFLOW_HOME": home, "PYTHONPATH": str(ROOT / "plugins"),
           "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__UNIT_TEST_MODE": "False", "PYTHONWARNINGS": "ignore::UserWarning",
           "AIRFLOW_CONN_USERGROUP_DEFAULT": json.dumps(conn), "AIRFLOW_VAR_USERGROUP_CUSTOMER_ID": CUSTOMER,
           "AIRFLOW_CONN_USERGROUP_OSSBSS": json.dumps({"conn_type": "usergroup_fake_ossbss"})}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if bytecode:
        env["PYTHONPYCACHEPREFIX"] = str(Path(home) / "pycache")
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPYCACHEPREFIX"] = str(Path(home) / "no-pycache")  # ignore any __pycache__ in the checkout
    return env


def task_ids() -> list[str]:
    sys.path.insert(0, str(ROOT / "plugins"))
    from usergroup.workflows.user_group.create_user_group import create_user_group

    return create_user_group.task_ids


def measure(url: str, repeats: int, bytecode: bool, preloaded: str = "worker") -> dict:
    ids = task_ids()
    with tempfile.TemporaryDirectory(prefix="task-cost-") as home:
        env = {**child_env(url, home, bytecode), "USERGROUP_TASK_COST_PRELOAD": preloaded}
        run_child(["parse", str(OURS)], env), run_child(["parse", str(BASE)], env)  # warm the bytecode cache
        parse = {"ours": [], "base": []}
        tasks: dict[str, list[dict]] = {t: [] for t in ids}
        state_file = str(Path(home) / "state.json")
        for n in range(repeats + 1):  # the first run warms the caches and is not counted
            parse["ours"].append(run_child(["parse", str(OURS)], env)["parse_ms"])
            parse["base"].append(run_child(["parse", str(BASE)], env)["parse_ms"])
            run_id, name = f"task-cost-{uuid4()}", f"Task cost {uuid4().hex[:8]}"
            Path(state_file).write_text("null")
            for task_id in ids:
                result = run_child(["task", task_id, state_file, run_id, name], env)
                if n:
                    tasks[task_id].append(result)
            if not n:
                parse = {"ours": [], "base": []}
            print(f"task_cost: run {n}/{repeats}", file=sys.stderr)
    return {"parse": parse, "tasks": tasks}


def report(results: dict) -> str:
    med = statistics.median
    p_ours, p_base = med(results["parse"]["ours"]), med(results["parse"]["base"])
    counts = ("sqlalchemy", "dbapi", "commits", "compiles", "connections")
    lines = [f"DAG file parse (after the preload): create_user_group {p_ours:.1f} ms, baseline_chain "
             f"{p_base:.1f} ms, ours {p_ours - p_base:.1f} ms", "",
             "| task | " + " | ".join(f"{p} ms" for p in PHASES) + " | " + " | ".join(counts) + " |",
             "|---" * (1 + len(PHASES) + len(counts)) + "|"]
    totals = dict.fromkeys(("body", *counts), 0.0)
    for task_id, runs in results["tasks"].items():
        cpu = {p: med(r["cpu"][p] for r in runs) for p in PHASES}
        count = {k: med(r["count"][k] for r in runs) for k in counts}
        totals["body"] += cpu["body"]
        for k in counts:
            totals[k] += count[k]
        lines.append(f"| {task_id} | " + " | ".join(f"{cpu[p]:.1f}" for p in PHASES) + " | "
                     + " | ".join(f"{count[k]:.0f}" for k in counts) + " |")
    lines.append("| all seven | " + " | " * (len(PHASES) - 1) + f"{totals['body']:.1f} | "
                 + " | ".join(f"{totals[k]:.0f}" for k in counts) + " |")
    mean = totals["body"] / len(results["tasks"])
    lines += ["", f"Per task, ours: parse {p_ours - p_base:.1f} ms + body {mean:.1f} ms (mean of the seven) = "
              f"{p_ours - p_base + mean:.1f} ms"]
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        kind, *args = sys.argv[2:]
        result = child_parse(*args) if kind == "parse" else child_task(*args)
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the PostgreSQL database of a migrated store")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--no-bytecode", action="store_true", help="compile every source in every process")
    parser.add_argument("--preload", choices=("worker", "runner", "sdk"), default="worker",
                        help="what the task process has imported before it parses (see preload())")
    parser.add_argument("--json", help="write every measure to this file")
    parser.add_argument("--sql", action="store_true", help="print the statements each task sent")
    args = parser.parse_args()
    results = measure(args.url, args.repeats, not args.no_bytecode, args.preload)
    if args.json:
        Path(args.json).write_text(json.dumps(results))
    if args.sql:
        for task_id, runs in results["tasks"].items():
            print(f"{task_id}:", *(f"  {s}" for s in runs[-1]["sql"]), sep="\n")
    print(report(results))


if __name__ == "__main__":
    main()
