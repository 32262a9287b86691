"""A scheduler, dag-processor or triggerer job imports what our tasks import as it starts (the processes it forks
find it imported); a task process does not; a bad setting does not stop the job."""

import os
import subprocess
import sys
import tempfile

from helpers import ROOT

WORKFLOW = "usergroup.workflows.user_group.create_user_group"
PRELOADED = [WORKFLOW, "usergroup.workflows.user.validate_users", "usergroup.airflow.dags", "usergroup.ossbss.fake",
             "usergroup.ossbss.scim.client", "psycopg2"]


def started(component: str, **env: str) -> subprocess.CompletedProcess:
    """A fresh Airflow process with our plugins folder, starting `component`: which of PRELOADED it then holds."""
    code = (f"import sys\n{component}\n"
            f"print(' '.join(m for m in {PRELOADED!r} if m in sys.modules))")
    with tempfile.TemporaryDirectory(prefix="usergroup-preload-") as home:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                              env={**os.environ, "AIRFLOW_HOME": home, "AIRFLOW__CORE__PLUGINS_FOLDER":
                                   str(ROOT / "plugins"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", **env})


def test_a_job_preloads_every_workflow_and_both_ossbss_clients():
    out = started("from airflow.jobs.job import Job\nassert 'usergroup.ossbss.fake' not in sys.modules\nJob()")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == PRELOADED


def test_a_task_process_preloads_nothing():
    out = started("from airflow.listeners.listener import get_listener_manager\n"
                  "from airflow.sdk.execution_time.task_runner import TaskRunnerMarker\n"
                  "get_listener_manager().hook.on_starting(component=TaskRunnerMarker())")
    assert out.returncode == 0, out.stderr[-2000:]
    assert WORKFLOW not in out.stdout.split()


def test_a_bad_setting_is_logged_and_the_job_starts():
    out = started("from airflow.jobs.job import Job\nJob()\nprint('started')", USERGROUP_CHUNK_SIZE="many")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "started" in out.stdout and WORKFLOW not in out.stdout.split()
    assert "could not preload the workflows" in out.stdout + out.stderr and "USERGROUP_CHUNK_SIZE='many'" in (
        out.stdout + out.stderr)


def test_a_celery_worker_preloads_them_before_it_forks_its_pool():
    """The compose deployment's Celery configuration: Airflow's own, and the worker's `import_modules` signal (sent
    as it starts, before it forks the processes that fork each task) imports what our tasks import."""
    out = started("from airflow.providers.celery.executors.celery_executor_utils import app\n"
                  "from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG as default\n"
                  f"assert {WORKFLOW!r} not in sys.modules\n"
                  "assert app.conf.broker_url == default['broker_url'] and app.conf.task_acks_late\n"
                  "app.loader.import_default_modules()",
                  AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS="usergroup.airflow.celery_config.CELERY_CONFIG")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines()[-1].split() == PRELOADED  # after Celery's log of its configuration
