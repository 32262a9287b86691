"""bulk_cost: where a bulk run's time goes, task by task, on a real PostgreSQL store.

Runs create_user_groups' task bodies in this process, in order, as Airflow calls them (one try each), for N new
names on the fake OSS/BSS, in a schema of its own that it migrates first and drops after. For each task: wall and
process CPU, the statements sent and the bytes of JSON written; `--profile TASK` prints that task's slowest statements
and top functions (cProfile). Airflow's own cost per task (scheduling, the task process, the parse) is not in it:
`make bench` measures the whole run.

    python benchmarks/bulk_cost.py postgresql://postgres@127.0.0.1:5432/postgres [--items 10000] \
        [--profile TASK [--sort cumulative]]
"""

import argparse
import cProfile
import inspect
import json
import os
import pstats
import secrets
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
CUSTOMER = "8f4b1a52-2c7e-4d1c-9a3e-0b6f5d2e7c10"


def setup(url: str, db_schema: str, home: str) -> None:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    os.environ.update({
        "AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PYTHONWARNINGS": "ignore::UserWarning",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False", "AIRFLOW_VAR_USERGROUP_CUSTOMER_ID": CUSTOMER,
        "AIRFLOW_CONN_USERGROUP_DEFAULT": json.dumps({
            "conn_type": "postgres", "host": u.host, "port": u.port or 5432, "login": u.username,
            "password": u.password or "", "schema": u.database, "extra": {"db_schema": db_schema}}),
        "AIRFLOW_CONN_USERGROUP_OSSBSS": json.dumps({"conn_type": "usergroup_fake_ossbss"})})
    sys.path.insert(0, str(ROOT / "plugins"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="a PostgreSQL database (a schema of its own is made in it, and dropped)")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--profile", help="the task whose functions to print (cProfile, by own time)")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime", choices=("tottime", "cumulative"))
    args = parser.parse_args()
    db_schema = f"bulk_cost_{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="bulk-cost-") as home:
        setup(args.url, db_schema, home)
        from sqlalchemy import Engine, event, text

        from usergroup.airflow.dags import bulk_dag
        from usergroup.airflow.hook import UserGroupHook
        from usergroup.ossbss.fake import FakeOssBss
        from usergroup.store.migrate import upgrade
        from usergroup.workflows.user_group.create_user_groups import create_user_groups

        hook = UserGroupHook()
        upgrade(hook.engine)
        FakeOssBss(hook.engine.url, db_schema).upgrade()
        count = {"statements": 0, "json_bytes": 0}

        by_statement: dict[str, list[float]] = {}

        @event.listens_for(Engine, "before_cursor_execute")
        def _statement(conn, cursor, statement, parameters, context, executemany):
            count["statements"] += 1
            conn.info["started"] = time.perf_counter()

        @event.listens_for(Engine, "after_cursor_execute")
        def _executed(conn, cursor, statement, parameters, context, executemany):
            spent = by_statement.setdefault(" ".join(statement.split())[:100], [0, 0.0])
            spent[0] += 1
            spent[1] += time.perf_counter() - conn.info.pop("started")

        from sqlalchemy.types import JSON
        bind = JSON.bind_processor

        def counting_bind(self, dialect):
            process = bind(self, dialect)

            def counted(value):
                out = process(value)
                count["json_bytes"] += len(out) if isinstance(out, str) else 0
                return out
            return counted

        JSON.bind_processor = counting_bind
        from usergroup.store import sql  # a chunk's rows are COPY'd on PostgreSQL: its statements and JSON too

        staged, to_copy = sql.staged, sql._to_copy

        def counting_staged(conn, table, rows):
            stage = staged(conn, table, rows)
            count["statements"] += 3 if stage is not None else 0  # its table made, the COPY, the table emptied
            return stage

        def counting_to_copy(column_type, dialect):
            null, to_text = to_copy(column_type, dialect)
            if not isinstance(column_type, JSON):
                return null, to_text

            def counted(value):
                out = to_text(value)
                count["json_bytes"] += len(out)
                return out
            return null, counted

        sql.staged, sql._to_copy = counting_staged, counting_to_copy
        dag = bulk_dag(create_user_groups)
        names = [f"Bulk cost {i} {secrets.token_hex(3)}" for i in range(args.items)]
        run = SimpleNamespace(dag_id=dag.dag_id, run_id=f"bulk-cost-{secrets.token_hex(4)}", run_type="manual",
                              triggering_user_name="bulk_cost", conf={"group_names": names})
        ti = SimpleNamespace(map_index=-1, try_number=1, hostname="bulk_cost")
        print(f"bulk_cost: {args.items} items, PostgreSQL schema {db_schema}", file=sys.stderr)
        print("| task | wall s | CPU s | statements | JSON MB written |\n|---|---|---|---|---|")
        total_wall = total_cpu = 0.0
        try:
            for task in dag.topological_sort():
                count.update(statements=0, json_bytes=0)
                by_statement.clear()
                profile = cProfile.Profile() if task.task_id == args.profile else None
                wall, cpu = time.perf_counter(), time.process_time()
                if profile:
                    profile.enable()
                given = {"params": {"group_names": names, "source": None}, "dag_run": run, "ti": ti,
                         "outlet_events": None}
                accepted = inspect.signature(task.python_callable).parameters
                task.python_callable(**{k: v for k, v in given.items() if k in accepted})
                if profile:
                    profile.disable()
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                total_wall, total_cpu = total_wall + wall, total_cpu + cpu
                print(f"| {task.task_id} | {wall:.2f} | {cpu:.2f} | {count['statements']} | "
                      f"{count['json_bytes'] / 1e6:.1f} |", flush=True)
                if profile:
                    for head, (n, spent) in sorted(by_statement.items(), key=lambda kv: -kv[1][1])[:15]:
                        print(f"{spent:7.3f} s {n:4} x {head}", file=sys.stderr)
                    pstats.Stats(profile, stream=sys.stderr).sort_stats(args.sort).print_stats(args.top)
            print(f"| all | {total_wall:.2f} | {total_cpu:.2f} | | |")
        finally:
            hook.engine.dispose()
            with hook.engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {db_schema} CASCADE"))
            hook.engine.dispose()


if __name__ == "__main__":
    main()
