"""up_latency: a running stack's (`make up`'s) trigger-to-success time for create_user_group over its REST API.

Triggers RUNS creates one after another, each once the one before has ended, and prints the median, min and max
of Airflow's own `end_date - queued_at`. It logs in as `admin` with the password in the home's passwords.json.

    AIRFLOW_HOME=$PWD/.airflow .venv/bin/python benchmarks/up_latency.py [--runs 10] [--port 8080]
"""

import argparse
import json
import os
import secrets
import statistics
import time
from datetime import datetime
from pathlib import Path

import requests

DAG = "create_user_group"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8080)))
    args = parser.parse_args()
    home = Path(os.environ.get("AIRFLOW_HOME", ".airflow"))
    password = json.loads((home / "passwords.json").read_text())["admin"]
    base = f"http://127.0.0.1:{args.port}"
    token = requests.post(f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=30)
    token.raise_for_status()
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    seconds = []
    for n in range(args.runs):
        name = f"Latency {n} {secrets.token_hex(3)}"
        r = api.post(f"{base}/api/v2/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": {"group_name": name}},
                     timeout=30)
        r.raise_for_status()
        run_id, deadline = r.json()["dag_run_id"], time.monotonic() + 120
        while (run := api.get(f"{base}/api/v2/dags/{DAG}/dagRuns/{run_id}", timeout=30).json())["state"] not in (
                "success", "failed"):
            if time.monotonic() > deadline:
                raise SystemExit(f"up_latency: run {run_id} did not end in 120 s")
            time.sleep(0.1)
        if run["state"] != "success":
            raise SystemExit(f"up_latency: run {run_id} failed")
        seconds.append((datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["queued_at"]))
                       .total_seconds())
    print(f"up_latency: {DAG}, {args.runs} runs over REST, trigger to success: median "
          f"{statistics.median(seconds):.2f} s (min {min(seconds):.2f} s, max {max(seconds):.2f} s)")


if __name__ == "__main__":
    main()
