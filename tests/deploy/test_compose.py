"""Static checks of the compose deployment: it parses, the topology is complete and healthy-checked, the image
matches the pinned Airflow, the Airflow services agree on their environment, and no secret has a value."""

import json
import re
import subprocess

import pytest
import yaml

from helpers import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
AIRFLOW_SERVICES = [name for name in SERVICES if name.startswith("airflow-")]
LONG_RUNNING = ["postgres", "redis", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                "airflow-triggerer", "airflow-worker"]
SHARED_ENV = ["AIRFLOW__CORE__EXECUTOR", "AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND",
              "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
              "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW_CONN_USERGROUP_DEFAULT",
              "AIRFLOW_CONN_USERGROUP_OSSBSS"]
SECRET_KEYS = re.compile(r"PASSWORD|SECRET|FERNET|_KEY$", re.I)


def pinned_airflow() -> str:
    (line,) = [x for x in (ROOT / "requirements.txt").read_text().splitlines() if x.startswith("apache-airflow==")]
    return line.split("==")[1]


def test_every_service_of_the_topology_is_there_with_a_health_check():
    assert set(LONG_RUNNING + ["airflow-init"]) <= set(SERVICES)
    for name in LONG_RUNNING:
        assert SERVICES[name].get("healthcheck", {}).get("test"), f"{name} has no health check"
    for name in AIRFLOW_SERVICES:
        if name != "airflow-init":  # the one-shot init is waited for by completion, not health
            assert SERVICES[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_the_init_service_migrates_upgrades_the_store_and_readies_the_dag():
    script = SERVICES["airflow-init"]["command"][-1]
    for command in ("airflow db migrate", "usergroup db upgrade", "airflow pools set usergroup_store",
                    "workflows=$$(usergroup workflows | paste -sd '|')",
                    'airflow dags unpause --treat-dag-id-as-regex --yes "^($$workflows)$$"'):
        assert command in script


def test_the_image_matches_the_pinned_airflow_and_python():
    version = pinned_airflow()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"FROM apache/airflow:{version}-python3.11" in dockerfile
    assert "requirements.txt" in dockerfile and "--no-deps /opt/usergroup" in dockerfile
    assert f":{version}-python3.11" in COMPOSE["x-airflow-common"]["image"]


def test_the_airflow_services_agree_on_their_environment():
    envs = {name: SERVICES[name]["environment"] for name in AIRFLOW_SERVICES}
    for key in SHARED_ENV:
        values = {name: env.get(key) for name, env in envs.items()}
        assert len(set(values.values())) == 1 and None not in values.values(), (key, values)
    env = envs["airflow-scheduler"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379")
    assert "@postgres:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert "@postgres:5432/airflow" in env["AIRFLOW__CELERY__RESULT_BACKEND"]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert "db_schema=usergroup" in env["AIRFLOW_CONN_USERGROUP_DEFAULT"]
    assert json.loads(env["AIRFLOW_CONN_USERGROUP_OSSBSS"]) == {"conn_type": "usergroup_fake_ossbss"}


def test_no_secret_has_a_value_in_the_repository():
    def walk(node, path=""):
        if isinstance(node, dict):
            for k, v in node.items():
                yield from walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from walk(v, f"{path}[{i}]")
        else:
            yield path, node

    for path, value in walk(COMPOSE):
        key = path.rsplit(".", 1)[-1]
        if SECRET_KEYS.search(key) and not key.endswith("_FILE") and isinstance(value, str):
            assert value.startswith("${") and ":?" in value, f"{path} has a literal secret"
        if isinstance(value, str) and "://" in value and "@" in value:
            assert "${POSTGRES_PASSWORD" in value, f"{path} has a password in its URL"
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert {k for k in example if SECRET_KEYS.search(k)} == {
        "POSTGRES_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY"}
    assert all(example[k] == "" for k in example if SECRET_KEYS.search(k))
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert ".env" not in tracked


@pytest.mark.parametrize("name", ["airflow-worker"])
def test_workers_scale(name):
    service = SERVICES[name]
    assert "container_name" not in service and "ports" not in service  # `--scale airflow-worker=N` works
