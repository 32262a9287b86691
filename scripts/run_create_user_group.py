"""`make run`: create one User Group through `airflow dags test` and print the subscription as JSON.

The name comes from the environment (USERGROUP_RUN_NAME), never through a shell line, so any text a user
can type reaches Airflow as it is. Exit status 0 only if the subscription ended active and in sync.
"""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from usergroup.domain.names import check_group_name

DAG_ID = "create_user_group"


def say(message: str) -> None:
    print(f"make run: {message}", file=sys.stderr, flush=True)


def main() -> int:
    if os.environ.get("USERGROUP_RUN_NAME_SET"):
        name = os.environ.get("USERGROUP_RUN_NAME", "")
    else:
        name = f"Example group {datetime.now(UTC):%Y-%m-%d %H:%M:%S}"
    airflow_home = Path(os.environ["AIRFLOW_HOME"])
    log_path = airflow_home / "logs" / "make-run.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    airflow = str(Path(sys.executable).parent / "airflow")
    env = {**os.environ, "PYTHONWARNINGS": "ignore::UserWarning"}

    say(f"triggering {DAG_ID} with group_name={name!r} (airflow dags test; log: {log_path})")
    since = datetime.now(UTC)
    with log_path.open("w") as log:
        result = subprocess.run([airflow, "dags", "test", DAG_ID, "--conf", json.dumps({"group_name": name})],
                                stdout=log, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        reasons = [line.strip() for line in log_path.read_text(errors="replace").splitlines()
                   if "ParamValidationError:" in line or "AirflowFailException:" in line]
        for line in dict.fromkeys(reasons) or ["see the log"]:
            say(f"rejected: {line}")
        try:
            check_group_name(name)
        except ValueError as exc:
            say(f"the rule it breaks: {exc}")
        say(f"airflow dags test exited {result.returncode}")
        return result.returncode

    from usergroup.interfaces.cli.main import quiet_hook
    from usergroup.interfaces.views import subscription_record

    with quiet_hook().store.transaction() as repo:
        runs = [p for p in repo.list_processes(dag_id=DAG_ID) if p["started_at"] >= since]
        if not runs:
            say("the run left no process in the store")
            return 1
        (subscription_id,) = repo.subscriptions_of(runs[-1]["process_id"])
        view = subscription_record(repo, repo.get_subscription(subscription_id))
    print(json.dumps(view, indent=2, ensure_ascii=False))
    ok = view["status"] == "active" and view["insync"] is True
    say(f"subscription {view['subscription_id']} is {view['status']}, insync={view['insync']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
