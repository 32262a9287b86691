"""make bench: what usergroup costs on top of Airflow, on one live stack (PostgreSQL for Airflow's metadata and
for the store, the shipped tuned settings): latency and throughput against a bare chain of seven no-op tasks,
the DAG file's parse cost, the SQL statements of one create, a bulk run of 10,000 groups (on the fake OSS/BSS, then
over SCIM 2.0 against scripts/scim_server.py), create latency with
100,000 subscriptions in the store, and the Subscriptions page's load time with them (BENCH_ONLY=ui measures only
that). Ratios, not seconds, are the figures to compare; all are measured in the same session."""

import compileall
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from uuid import uuid4

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from stack_cpu import measuring  # noqa: E402

from devstack import PostgresStack, free_port  # noqa: E402
from scim_server import ScimServer  # noqa: E402

OURS, BASE, BULK_DAG = "create_user_group", "baseline_chain", "create_user_groups"
BULK = int(os.environ.get("BENCH_BULK", "10000"))
LARGE = int(os.environ.get("BENCH_BULK_LARGE", "100000"))  # the large run, its names from a file (0: none)
LATENCY_RUNS = int(os.environ.get("BENCH_LATENCY_RUNS", "20"))
BURST = int(os.environ.get("BENCH_BURST", "40"))
SCALE_ROWS = int(os.environ.get("BENCH_SCALE_ROWS", "100000"))
SCALE_RUNS = int(os.environ.get("BENCH_SCALE_RUNS", "10"))
PARSE_REPEATS = 7
ONLY_UI = os.environ.get("BENCH_ONLY") == "ui"
PAGE_REPEATS = 7


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


class Bench:
    def __init__(self, stack: PostgresStack):
        self.stack = stack
        self.n = 0

    def trigger(self, dag_id: str) -> str:
        self.n += 1
        r = self.stack.trigger({"group_name": f"Bench {self.n} {secrets.token_hex(3)}"}, dag_id=dag_id)
        r.raise_for_status()
        return r.json()["dag_run_id"]

    def finished(self, dag_id: str, run_id: str) -> tuple[datetime, datetime]:
        assert self.stack.wait_run(run_id, timeout=600, dag_id=dag_id) == "success", (dag_id, run_id)
        run = self.stack.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}").json()
        return ts(run["queued_at"]), ts(run["end_date"])

    def latency(self, dag_id: str) -> float:
        queued, ended = self.finished(dag_id, self.trigger(dag_id))
        return (ended - queued).total_seconds()

    def burst(self, dag_id: str, count: int) -> float:
        """Runs per minute when `count` are triggered at once: from the first queued to the last ended."""
        runs = [self.trigger(dag_id) for _ in range(count)]
        spans = [self.finished(dag_id, r) for r in runs]
        seconds = (max(e for _, e in spans) - min(q for q, _ in spans)).total_seconds()
        return count / seconds * 60


def bulk_run(stack: PostgresStack, count: int, home: Path | None = None) -> dict:
    """One create_user_groups run of `count` new names: trigger to success, and the most memory a task used. With
    `home` the names are a file in its `bulk/` folder, the run's source (100,000 names in a run's conf would
    make Airflow's trigger form and its run pages carry megabytes)."""
    names = [f"Bench bulk {i} {secrets.token_hex(3)}" for i in range(count)]
    if home is None:
        conf = {"group_names": names}
    else:
        source = home / "bulk" / f"names-{count}-{secrets.token_hex(3)}.txt"
        source.parent.mkdir(exist_ok=True)
        source.write_text("\n".join(names) + "\n", encoding="utf-8")
        conf = {"source": source.as_uri()}
    r = stack.trigger(conf, dag_id=BULK_DAG)
    r.raise_for_status()
    run_id = r.json()["dag_run_id"]
    assert stack.wait_run(run_id, timeout=1800, dag_id=BULK_DAG) == "success", run_id
    run = stack.api("GET", f"/dags/{BULK_DAG}/dagRuns/{run_id}").json()
    seconds = (ts(run["end_date"]) - ts(run["queued_at"])).total_seconds()
    tasks = {}
    for ti in stack.api("GET", f"/dags/{BULK_DAG}/dagRuns/{run_id}/taskInstances").json()["task_instances"]:
        xcom = stack.api("GET", f"/dags/{BULK_DAG}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/xcomEntries/"
                                "return_value", params={"deserialize": True}).json()
        value = xcom["value"] if isinstance(xcom["value"], dict) else json.loads(xcom["value"])
        tasks[ti["task_id"]] = {"seconds": (ts(ti["end_date"]) - ts(ti["start_date"])).total_seconds(),
                                "max_rss_mb": value.get("max_rss_mb", 0), "xcom_bytes": len(json.dumps(value))}
    return {"groups": count, "seconds": seconds, "per_min": count / seconds * 60, "tasks": tasks,
            "max_rss_mb": max(t["max_rss_mb"] for t in tasks.values())}


def scim_bulk_run(stack: PostgresStack, home: Path, count: int) -> dict:
    """The same bulk run with the OSS/BSS a SCIM server (the scheduler, whose task processes inherit its
    environment, restarted on that connection), then back on the fake."""
    (home / "scim").mkdir()
    server = ScimServer(home / "scim" / "resources.jsonl", free_port(), home / "scim" / "scim.log").start()
    fake = stack.env["AIRFLOW_CONN_USERGROUP_OSSBSS"]
    try:
        stack.stop("scheduler")
        stack.env["AIRFLOW_CONN_USERGROUP_OSSBSS"] = server.connection()
        stack.start("scheduler")
        stack.wait_healthy()
        return bulk_run(stack, count)
    finally:
        stack.stop("scheduler")
        stack.env["AIRFLOW_CONN_USERGROUP_OSSBSS"] = fake
        stack.start("scheduler")
        stack.wait_healthy()
        server.stop()


def statements_per_create(store_url: str, db_schema: str) -> int:
    """The SQL statements one create_user_group sends to the store, its seven steps run as its tasks run them
    (in this process, transactions' BEGIN and COMMIT not counted)."""
    from sqlalchemy import event

    from usergroup.airflow.tasks import run_step
    from usergroup.domain import USER_GROUP_PRODUCT
    from usergroup.engine.process_id import process_id_for
    from usergroup.ossbss.fake import FakeOssBss
    from usergroup.settings import settings
    from usergroup.store.connect import create_store_engine
    from usergroup.store.repository import Store
    from usergroup.workflows.user_group.create_user_group import create_user_group as workflow

    engine = create_store_engine(store_url, db_schema)
    oss = FakeOssBss(engine.url, db_schema)
    sent = []
    for e in (engine, oss.engine):
        event.listen(e, "before_cursor_execute", lambda *args: sent.append(args[2]))
    run_id = f"statements-{uuid4()}"
    state = {"process_id": str(process_id_for(OURS, run_id)), "workflow_name": OURS, "workflow_target": "CREATE",
             "product_type": "UserGroup", "product_id": str(USER_GROUP_PRODUCT.product_id),
             "customer_id": str(settings().default_customer_id), "group_name": f"Statements {run_id}"}
    start = {"workflow_name": OURS, "workflow_target": "CREATE", "dag_id": OURS, "run_id": run_id,
             "created_by": "bench"}
    for i, (s, task_id) in enumerate(zip(workflow.steps, workflow.task_ids, strict=True)):
        state = run_step(s, state, store=Store(engine), oss=oss, try_number=1, task_id=task_id,
                         start=start if i == 0 else None)
    engine.dispose()
    oss.engine.dispose()
    return len(sent)


def page_seconds(stack: PostgresStack) -> dict[str, float]:
    """The median time to load each of the Subscriptions pages (server-rendered HTML with a login, over HTTP; the
    page runs no script that loads more)."""
    import requests

    headers, out = {"Authorization": f"Bearer {stack.token()}"}, {}
    some_id = requests.get(f"{stack.base}/orchestrator/api/subscriptions/search", params={"range": "0,1"},
                           headers=headers, timeout=60).json()[0]["subscription_id"]
    pages = {"list, first page": ("/subscriptions", {}),
             "list, search (2 words)": ("/subscriptions", {"query": "group 99"}),
             "list, filtered, page 2,000": ("/subscriptions", {"status": "active", "page_number": "2000"}),
             "a subscription": (f"/subscriptions/{some_id}", {})}
    for name, (path, params) in pages.items():
        times = []
        for _ in range(PAGE_REPEATS):
            started = time.monotonic()
            r = requests.get(f"{stack.base}/orchestrator/ui{path}", params=params, headers=headers, timeout=60)
            times.append(time.monotonic() - started)
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
        out[name] = statistics.median(times)
    return out


PRELOADED = ("import usergroup_plugin\nfrom usergroup.airflow.preload import preload\npreload()\n")


def parse_seconds(dag_file: Path, env: dict[str, str], preloaded: bool = False) -> float:
    """The DAG file's own cost in a fresh interpreter that has already imported Airflow's SDK (`preloaded`: and
    what a LocalExecutor task process finds imported, forked from the scheduler: our plugin and its preload)."""
    code = ("import time, runpy, sys, airflow.sdk\n" + (PRELOADED if preloaded else "") +
            "t = time.perf_counter(); runpy.run_path(sys.argv[1]); print(time.perf_counter() - t)\n")
    times = [float(subprocess.run([sys.executable, "-c", code, str(dag_file)], env=env, capture_output=True,
                                  text=True, check=True, cwd=ROOT / "plugins").stdout.split()[-1])
             for _ in range(PARSE_REPEATS)]
    return statistics.median(times)


def fill_store(store_url: str, db_schema: str, customer_id: str, rows: int) -> None:
    """`rows` active subscriptions of the faked customer, each with its block, completed process and link."""
    from datetime import UTC

    from sqlalchemy import insert

    from usergroup.domain import USER_GROUP_PRODUCT
    from usergroup.store.connect import create_store_engine
    from usergroup.store.mappings.user_group import user_group_blocks
    from usergroup.store.tables import processes, processes_subscriptions, subscriptions

    engine = create_store_engine(store_url, db_schema)
    now = datetime.now(UTC)
    for start in range(0, rows, 10_000):
        subs, blocks, procs, links = [], [], [], []
        for i in range(start, min(rows, start + 10_000)):
            sid, pid, name = uuid4(), uuid4(), f"Existing group {i}"
            subs.append({"subscription_id": sid, "product_id": USER_GROUP_PRODUCT.product_id,
                         "customer_id": customer_id, "description": f"User Group {name}", "status": "active",
                         "insync": True, "start_date": now, "end_date": None, "note": None, "version": 5})
            blocks.append({"subscription_id": sid, "group_name": name, "group_id": i + 10_000_000,
                           "customer_id": customer_id, "name_key": name.casefold()})
            procs.append({"process_id": pid, "workflow_name": OURS, "workflow_target": "CREATE",
                          "status": "completed", "last_step": "done", "dag_id": OURS, "run_id": f"fill_{i}",
                          "created_by": "bench", "input_state": {"group_name": name, "customer_id": customer_id},
                          "started_at": now, "last_modified_at": now})
            links.append({"process_id": pid, "subscription_id": sid, "workflow_target": "CREATE",
                          "created_at": now})
        with engine.begin() as conn:
            for table, values in ((subscriptions, subs), (user_group_blocks, blocks), (processes, procs),
                                  (processes_subscriptions, links)):
                conn.execute(insert(table), values)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()


def write(results: dict) -> None:
    out = ROOT / "artifacts" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"figures: {out}")


def main() -> int:
    # A deployment runs compiled modules (pip and the Docker image compile them): so does the benchmark, even where
    # PYTHONDONTWRITEBYTECODE would have every task process compile ours from source again.
    for folder in ("plugins", "dags", "benchmarks"):
        compileall.compile_dir(ROOT / folder, quiet=1)
    pg = os.environ.get("USERGROUP_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    home = Path(tempfile.mkdtemp(prefix="usergroup-bench-"))
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(ROOT / "dags" / f"{OURS}.py", dags)
    shutil.copy(ROOT / "dags" / f"{BULK_DAG}.py", dags)
    shutil.copy(ROOT / "benchmarks" / f"{BASE}.py", dags)
    store_schema = f"ug_bench_{secrets.token_hex(4)}"
    store_url = pg.replace("postgresql://", "postgresql+psycopg2://", 1)
    from sqlalchemy.engine import make_url

    u = make_url(store_url)
    conn = json.dumps({"conn_type": "postgres", "host": u.host, "port": u.port, "login": u.username,
                       "password": u.password or "", "schema": u.database, "extra": {"db_schema": store_schema}})
    stack = PostgresStack(home, pg, {"AIRFLOW__CORE__DAGS_FOLDER": str(dags),
                                     "AIRFLOW_CONN_USERGROUP_DEFAULT": conn,
                                     "USERGROUP_MAX_ITEMS": str(max(BULK, LARGE, 10_000))})
    results: dict = {"machine": f"{os.cpu_count()} cores, {os.uname().machine}, Python {sys.version.split()[0]}"}
    print(f"bench: starting Airflow (metadata and store on PostgreSQL) in {home}", file=sys.stderr, flush=True)
    try:
        stack.start_stack()
        stack.airflow("dags", "unpause", BASE)
        bench = Bench(stack)
        for dag_id in (OURS, BASE):  # warm-up: first runs pay for caches on both sides
            bench.latency(dag_id)
        if not ONLY_UI:
            print(f"bench: latency, {LATENCY_RUNS} runs each, interleaved", file=sys.stderr, flush=True)
            lat = {OURS: [], BASE: []}
            for _ in range(LATENCY_RUNS):
                for dag_id in (OURS, BASE):
                    lat[dag_id].append(bench.latency(dag_id))
            print(f"bench: throughput, {BURST} runs at once", file=sys.stderr, flush=True)
            burst, burst_cpu = {}, {}
            for dag_id in (OURS, BASE):  # and the CPU of each component of the stack, a run
                with measuring() as cpu:
                    burst[dag_id] = bench.burst(dag_id, BURST)
                burst_cpu[dag_id] = {kind: seconds / BURST for kind, seconds in cpu.items()}

            parse_env = {**stack.env}
            parse = {dag_id: parse_seconds(dags / f"{dag_id}.py", parse_env) for dag_id in (OURS, BASE)}
            parse_task = {dag_id: parse_seconds(dags / f"{dag_id}.py", parse_env, preloaded=True)
                          for dag_id in (OURS, BASE)}
            statements = statements_per_create(store_url, store_schema)
            print(f"bench: bulk, {BULK} groups in one run", file=sys.stderr, flush=True)
            bulk = bulk_run(stack, BULK)
            large = None
            if LARGE:
                print(f"bench: bulk, {LARGE} groups in one run, from a file", file=sys.stderr, flush=True)
                large = bulk if LARGE == BULK else bulk_run(stack, LARGE, home)
            print(f"bench: bulk over SCIM, {BULK} groups in one run", file=sys.stderr, flush=True)
            bulk_scim = scim_bulk_run(stack, home, BULK)

        print(f"bench: scale, {SCALE_ROWS} existing subscriptions", file=sys.stderr, flush=True)
        empty = [bench.latency(OURS) for _ in range(1 if ONLY_UI else SCALE_RUNS)]
        pages_empty = page_seconds(stack)
        from usergroup.settings import settings

        fill_store(store_url, store_schema, str(settings().default_customer_id), SCALE_ROWS)
        pages_full = page_seconds(stack)
        full = [] if ONLY_UI else [bench.latency(OURS) for _ in range(SCALE_RUNS)]
    finally:
        stack.stop_stack()
        from sqlalchemy import create_engine, text

        engine = create_engine(store_url)
        with engine.begin() as c:
            c.execute(text(f'DROP SCHEMA IF EXISTS "{store_schema}" CASCADE'))
        engine.dispose()
        shutil.rmtree(home, ignore_errors=True)

    results["ui_page_s"] = {"rows": SCALE_ROWS, "empty": pages_empty, "full": pages_full,
                            "ratio": pages_full["list, first page"] / pages_empty["list, first page"]}
    page_rows = [(f"Subscriptions page: {name}, {SCALE_ROWS:,} subscriptions / (almost) none",
                  f"{pages_full[name] * 1000:.0f} ms", f"{pages_empty[name] * 1000:.0f} ms",
                  f"{pages_full[name] / pages_empty[name]:.2f}") for name in pages_full]
    if ONLY_UI:
        print("\n| measure | full store | empty store | ratio |\n|---|---|---|---|")
        for row in page_rows:
            print("| " + " | ".join(row) + " |")
        write(results)
        print(f"bench: ui_page_ms={pages_full['list, first page'] * 1000:.0f} "
              f"ui_page_ratio={results['ui_page_s']['ratio']:.2f}")
        return 0
    med = {k: statistics.median(v) for k, v in lat.items()}
    results.update({
        "latency_s": {k: {"median": med[k], "p90": pct(v, 0.9), "runs": len(v)} for k, v in lat.items()},
        "latency_ratio": med[OURS] / med[BASE],
        "runs_per_min": burst, "throughput_ratio": burst[OURS] / burst[BASE], "create_per_min": burst[OURS],
        "burst_cpu_s_per_run": burst_cpu,
        "parse_s": parse, "parse_ratio": parse[OURS] / parse[BASE],
        "parse_in_task_s": parse_task,
        "scale": {"rows": SCALE_ROWS, "empty_median_s": statistics.median(empty),
                  "full_median_s": statistics.median(full)},
        "scale_ratio": statistics.median(full) / statistics.median(empty),
        "statements_per_create": statements, "bulk": bulk, "bulk_per_min": bulk["per_min"],
        "bulk_scim": bulk_scim, "bulk_scim_per_min": bulk_scim["per_min"], "bulk_large": large,
    })
    ours, base = burst_cpu[OURS], burst_cpu[BASE]
    cpu_rows = [(f"CPU a run, {BURST} at once: {kind}", f"{ours.get(kind, 0) * 1000:.0f} ms",
                 f"{base.get(kind, 0) * 1000:.0f} ms",
                 f"{ours.get(kind, 0) / base[kind]:.2f}" if base.get(kind) else "")
                for kind in sorted(ours.keys() | base.keys(), key=lambda k: -ours.get(k, 0))]
    rows = [
        ("trigger-to-success, median", f"{med[OURS]:.2f} s", f"{med[BASE]:.2f} s", f"{results['latency_ratio']:.2f}"),
        ("trigger-to-success, p90", f"{pct(lat[OURS], .9):.2f} s", f"{pct(lat[BASE], .9):.2f} s", ""),
        (f"throughput, {BURST} at once", f"{burst[OURS]:.1f} /min", f"{burst[BASE]:.1f} /min",
         f"{results['throughput_ratio']:.2f}"),
        *cpu_rows,
        ("DAG file parse (after airflow.sdk)", f"{parse[OURS] * 1000:.0f} ms", f"{parse[BASE] * 1000:.0f} ms",
         f"{results['parse_ratio']:.2f}"),
        ("DAG file parse in a task process (after the scheduler's preload)", f"{parse_task[OURS] * 1000:.0f} ms",
         f"{parse_task[BASE] * 1000:.0f} ms", f"{parse_task[OURS] / parse_task[BASE]:.2f}"),
        (f"create with {SCALE_ROWS:,} subscriptions in the store / with none", f"{statistics.median(full):.2f} s",
         f"{statistics.median(empty):.2f} s", f"{results['scale_ratio']:.2f}"),
        (f"bulk: {BULK:,} groups in one run of {BULK_DAG}, trigger to success", f"{bulk['seconds']:.1f} s",
         f"{BULK * statistics.median(lat[OURS]):.0f} s (one run each)",
         f"{bulk['seconds'] / (BULK * statistics.median(lat[OURS])):.4f}"),
        ("bulk: the most memory a task used", f"{bulk['max_rss_mb']:.0f} MB", "", ""),
        *([(f"bulk: {LARGE:,} groups in one run (a file of names), trigger to success / {BULK:,}",
            f"{large['seconds']:.1f} s", f"{bulk['seconds']:.1f} s", f"{large['seconds'] / bulk['seconds']:.2f}"),
           (f"bulk, {LARGE:,}: the most memory a task used", f"{large['max_rss_mb']:.0f} MB", "", "")]
          if large else []),
        (f"bulk over SCIM 2.0: {BULK:,} groups, trigger to success / on the fake OSS/BSS",
         f"{bulk_scim['seconds']:.1f} s", f"{bulk['seconds']:.1f} s", f"{bulk_scim['seconds'] / bulk['seconds']:.2f}"),
        ("SQL statements one create sends to the store", f"{statements}", "179 (orchestrator-core)",
         f"{statements / 179:.2f}"),
        *page_rows,
    ]
    print(f"\n| measure | {OURS} | {BASE} (or empty store) | ratio |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nmachine: {results['machine']}")
    write(results)
    print(f"bench: latency_ratio={results['latency_ratio']:.2f} throughput_ratio={results['throughput_ratio']:.2f} "
          f"create_per_min={results['create_per_min']:.1f} scale_ratio={results['scale_ratio']:.2f} "
          f"bulk_per_min={results['bulk_per_min']:.0f} bulk_scim_per_min={results['bulk_scim_per_min']:.0f} "
          f"statements_per_create={statements}" + (f" bulk_{LARGE // 1000}k_s={large['seconds']:.1f}" if large else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
