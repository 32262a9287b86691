"""A client written for orchestrator-core's REST API: it creates a User Group and a User in it, renames the group
and terminates both, using only orchestrator-core's endpoints. Against usergroup, only the base URL changes
(Airflow's api-server + /orchestrator) and Airflow's token is added.

    ORCHESTRATOR_URL=http://127.0.0.1:8080/orchestrator ORCHESTRATOR_TOKEN=... python examples/orchestrator_client.py
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

BASE = os.environ.get("ORCHESTRATOR_URL", "http://127.0.0.1:8080/orchestrator").rstrip("/")
TOKEN = os.environ.get("ORCHESTRATOR_TOKEN", "")


def call(method: str, path: str, body=None):
    request = urllib.request.Request(f"{BASE}/api{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
    return json.loads(text) if text else None


def run(workflow: str, *pages: dict) -> dict:
    """Start a workflow with its form pages and poll its process until it ends."""
    process_id = call("POST", f"/processes/{workflow}", list(pages))["id"]
    for _ in range(600):
        process = call("GET", f"/processes/{process_id}")
        if process["last_status"] in ("completed", "failed", "aborted"):
            break
        time.sleep(0.2)
    print(f"{workflow}: {process['last_status']} {process.get('failed_reason') or ''}".rstrip())
    if process["last_status"] != "completed":
        sys.exit(1)
    return process


def product(name: str) -> str:
    return next(p["product_id"] for p in call("GET", "/products/") if p["name"] == name)


def main() -> int:
    name = sys.argv[1] if len(sys.argv) > 1 else f"Client Lab {int(time.time())}"
    group = run("create_user_group", {"product": product("User Group")}, {"group_name": name})
    group_id = group["subscriptions"][0]["subscription_id"]
    user = run("create_user", {"product": product("User internal")},
               {"user_group_ids": [group_id], "username": "client user", "age": 42})
    user_id = user["subscriptions"][0]["subscription_id"]
    run("modify_user_group", {"subscription_id": group_id}, {"group_name": f"{name} renamed"})
    model = call("GET", f"/subscriptions/domain-model/{user_id}")
    print(f"user {model['user']['username']} is in group {model['user']['group']['group_name']!r}")
    run("terminate_user", {"subscription_id": user_id}, {})
    run("terminate_user_group", {"subscription_id": group_id}, {})
    for sid in (user_id, group_id):
        model = call("GET", f"/subscriptions/domain-model/{sid}")
        print(f"{model['product']['name']} {sid}: {model['status']}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except urllib.error.HTTPError as exc:
        print(f"{exc.code} {exc.reason}: {exc.read().decode()}", file=sys.stderr)
        sys.exit(1)
