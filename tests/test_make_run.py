"""`make run`: the README's first command, with names a user can type, passed to Airflow verbatim."""

import json
import os
import subprocess

import pytest

from helpers import ROOT

pytestmark = pytest.mark.slow  # spawns Airflow processes (`airflow dags test`): make test, not make test-fast

TRICKY = "O'Brien; $(shell id) `id` \"q\" \\ Zürich 研究"


@pytest.fixture
def make_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MAKE"))}
    env["AIRFLOW_HOME"] = str(tmp_path / "airflow-home")
    return env


def make_run(env, *args):
    return subprocess.run(["make", "--no-print-directory", "run", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def test_make_run_prints_an_active_subscription_for_a_tricky_name(make_env):
    result = make_run(make_env, f"NAME={TRICKY}")
    assert result.returncode == 0, result.stderr[-3000:]
    view = json.loads(result.stdout[result.stdout.index("{"):])
    assert view["user_group"]["group_name"] == TRICKY
    assert view["status"] == "active" and view["insync"] is True and view["user_group"]["group_id"]
    assert view["description"] == f"User Group {TRICKY}"
    assert [p["status"] for p in view["processes"]] == ["completed"]
    assert "uid=" not in result.stdout + result.stderr  # $(shell id) and `id` never ran
    # Afterwards the home carries its connections: the CLI with only AIRFLOW_HOME finds the store.
    only_home = {"AIRFLOW_HOME": make_env["AIRFLOW_HOME"], "PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "ignore"}
    listed = subprocess.run([str(ROOT / ".venv" / "bin" / "usergroup"), "subscriptions", "list", "--json"],
                            env=only_home, capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert view["subscription_id"] in [s["subscription_id"] for s in json.loads(listed.stdout)]


def test_make_run_rejects_a_bad_name_with_the_validation_message(make_env):
    result = make_run(make_env, "NAME=trailing ")
    assert result.returncode != 0
    assert "Invalid input for param group_name" in result.stderr
    make_env["NAME"] = " leading"  # from the environment, leading whitespace reaches the check too
    result = make_run(make_env)
    assert result.returncode != 0
    assert "Invalid input for param group_name: ' leading'" in result.stderr
