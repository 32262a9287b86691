"""DAG integrity, for every DAG in dags/: it imports cleanly and renders its workflow's declaration (task ids,
chain, params, display names, retries, timeouts, pool, tags); it does no I/O at import."""

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from helpers import ROOT
from usergroup.airflow.bulk import ANNOUNCE_TASK
from usergroup.airflow.schedule import SELECT_TASK
from usergroup.engine.discovery import all_workflows, declared
from usergroup.engine.workflow import Bulk, Schedule
from usergroup.settings import settings

WORKFLOWS = all_workflows()
SCHEDULES = {name: s for name, s in declared().items() if isinstance(s, Schedule)}
BULKS = {name: b for name, b in declared().items() if isinstance(b, Bulk)}


@pytest.fixture(scope="module")
def bag():
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag


def test_every_dag_is_declared_and_every_declaration_has_a_dag(bag):
    assert set(bag.dags) == set(declared())
    assert {"create_user_group", "modify_user_group", "terminate_user_group", "validate_user_group"} <= set(WORKFLOWS)
    assert {"create_user", "modify_user", "terminate_user", "validate_user"} <= set(WORKFLOWS)
    assert set(SCHEDULES) == {"validate_user_groups", "validate_users"}
    assert set(BULKS) == {"create_user_groups"}


@pytest.mark.parametrize("name", sorted(BULKS))
def test_a_bulk_run_has_its_workflows_tasks_each_after_the_last_has_ended(bag, name):
    dag, bulk = bag.dags[name], BULKS[name]
    ids = bulk.workflow.task_ids
    assert [t.task_id for t in dag.topological_sort()] == [*ids, ANNOUNCE_TASK]
    announcing = dag.get_task(ANNOUNCE_TASK)  # after the last task, whatever it ended; the run's state stays its
    assert announcing.is_teardown and not announcing.on_failure_fail_dagrun
    assert announcing.upstream_task_ids == {ids[-1]}
    for upstream, downstream in zip(ids, ids[1:], strict=False):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
        assert dag.get_task(downstream).trigger_rule == "all_done"  # an item that failed holds no other back
    assert dag.get_task(ids[0]).trigger_rule == "all_success"
    assert list(dag.params.keys()) == list(bulk.params) == ["group_names", "source"]
    assert dag.params.get_param("group_names").schema["maxItems"] == 10_000
    assert dag.params.get_param("group_names").schema["items"]["pattern"]  # each name checked at the trigger
    assert type(dag.timetable).__name__ == "NullTimetable" and {"usergroup", "bulk"} <= set(dag.tags)
    for t in dag.tasks:
        assert t.pool == settings().store_pool and t.retries >= 1 and t.multiple_outputs is False
        assert timedelta(minutes=10) <= t.execution_timeout <= timedelta(hours=1)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_a_schedule_selects_then_maps_its_workflow_over_the_selection(bag, name):
    dag, schedule = bag.dags[name], SCHEDULES[name]
    assert [t.task_id for t in dag.topological_sort()] == [SELECT_TASK, schedule.workflow.name]
    mapped = dag.get_task(schedule.workflow.name)
    assert type(mapped).__name__.endswith("MappedOperator") and mapped.upstream_task_ids == {SELECT_TASK}
    assert dag.schedule == schedule.schedule == "@daily" and type(dag.timetable).__name__ == "CronTriggerTimetable"
    assert dag.catchup is False and dag.max_active_runs == 1
    assert {"usergroup", "orchestrator"} <= set(dag.tags) and dag.doc_md == schedule.description
    for t in dag.tasks:
        assert t.pool == settings().store_pool and t.retries >= 1
        assert timedelta(0) < t.execution_timeout <= timedelta(minutes=30)


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_the_chain_is_the_declared_one(bag, name):
    dag, workflow = bag.dags[name], WORKFLOWS[name]
    ids = workflow.task_ids
    assert [t.task_id for t in dag.topological_sort()] == ids
    for upstream, downstream in zip(ids, ids[1:], strict=False):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    for s, task_id in zip(workflow.steps, ids, strict=True):
        assert dag.get_task(task_id).task_display_name == s.description  # the grid shows "Create subscription"


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_schedule_tags_docs_retries_timeouts_pool(bag, name):
    dag, workflow = bag.dags[name], WORKFLOWS[name]
    assert type(dag.timetable).__name__ == "NullTimetable"  # schedule=None: runs only when triggered
    assert dag.catchup is False and dag.doc_md == workflow.description and dag.doc_md.strip()
    assert {"usergroup", "orchestrator"} <= set(dag.tags)
    for t in dag.tasks:
        assert t.retries >= 1 and t.retry_delay > timedelta(0)
        assert timedelta(0) < t.execution_timeout <= timedelta(minutes=30)
        assert t.pool == settings().store_pool
        assert t.multiple_outputs is False  # the state goes through XCom as one JSON value
    assert list(dag.params.keys()) == list(workflow.params)


def test_the_oss_step_backs_off_exponentially_over_minutes(bag):
    task = bag.dags["create_user_group"].get_task("provision_user_group")
    assert task.retries >= 5 and task.retry_exponential_backoff > 1
    total = sum((min(task.retry_delay * task.retry_exponential_backoff ** n, task.max_retry_delay)
                for n in range(task.retries)), timedelta(0))
    assert total >= timedelta(minutes=5)


def test_create_user_group_params_schema(bag):
    param = bag.dags["create_user_group"].params.get_param("group_name")
    schema = param.schema
    assert schema["type"] == "string" and schema["minLength"] == 1 and schema["maxLength"] == 255
    assert schema["pattern"] and schema["title"] == "Group name"
    assert "whitespace" in param.description and "control, invisible or direction-changing" in param.description
    assert "create" in bag.dags["create_user_group"].tags


DAG_FILES = sorted(p.name for p in (ROOT / "dags").glob("*.py"))


@pytest.fixture(scope="module")
def imports_without_io() -> dict[str, str]:
    """Parse every DAG file, one after the other in one fresh interpreter, with our engine factory, connection
    lookups and sockets refusing to work: each file's outcome ("ok" or its error)."""
    code = (
        "import json, runpy, sys, socket, traceback, airflow.sdk, usergroup.store.connect as e\n"
        "import usergroup.airflow.hook as h\n"
        "def refuse(*a, **k): raise AssertionError('I/O at import')\n"
        "e.create_engine = refuse\n"
        "h.UserGroupHook.get_connection = classmethod(refuse)\n"
        "socket.socket.connect = refuse\n"
        "outcome = {}\n"
        "for path in sys.argv[1:]:\n"
        "    try: runpy.run_path(path); outcome[path] = 'ok'\n"
        "    except BaseException: outcome[path] = traceback.format_exc()[-2000:]\n"
        "print(json.dumps(outcome))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, *(str(ROOT / "dags" / f) for f in DAG_FILES)],
                            capture_output=True, text=True, cwd=ROOT / "plugins")
    assert result.returncode == 0, result.stderr[-2000:]
    return {Path(path).name: said for path, said in json.loads(result.stdout.splitlines()[-1]).items()}


@pytest.mark.parametrize("dag_file", DAG_FILES)
def test_the_dag_file_does_no_io_at_import(imports_without_io, dag_file):
    assert imports_without_io[dag_file] == "ok"
