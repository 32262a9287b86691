"""DAG integrity: the folder imports cleanly; task ids, chain, params, retries and tags of create_user_group."""

import subprocess
import sys

import pytest
from airflow.dag_processing.dagbag import DagBag

from conftest import ROOT

STEPS = ["create_subscription", "store_process_subscription", "initialize_subscription", "provision_user_group",
         "set_status", "resync", "done"]


@pytest.fixture(scope="module")
def dag():
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.dags["create_user_group"]


def test_the_seven_steps_in_order(dag):
    assert [t.task_id for t in dag.topological_sort()] == STEPS
    for upstream, downstream in zip(STEPS, STEPS[1:], strict=False):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}


def test_schedule_tags_docs_and_retries(dag):
    assert type(dag.timetable).__name__ == "NullTimetable"  # schedule=None: runs only when triggered
    assert {"usergroup", "create"} <= set(dag.tags)
    assert "group_name" in dag.doc_md and "usergroup subscriptions" in dag.doc_md
    for t in dag.tasks:
        assert t.retries >= 1
        assert t.multiple_outputs is False  # the state goes through XCom as one JSON value


def test_params_schema(dag):
    param = dag.params.get_param("group_name")
    schema = param.schema
    assert schema["type"] == "string" and schema["minLength"] == 1 and schema["maxLength"] == 255
    assert schema["pattern"] and schema["title"] == "Group name"
    assert "whitespace" in param.description and "control characters" in param.description
    assert list(dag.params.keys()) == ["group_name"]


def test_the_dag_file_does_no_io_at_import():
    """Parse the DAG file with our engine factory, connection lookups and sockets refusing to work."""
    code = (
        "import sys, socket, airflow.sdk, usergroup.store.engine as e, usergroup.hook as h\n"
        "def refuse(*a, **k): raise AssertionError('I/O at import')\n"
        "e.create_engine = refuse\n"
        "h.UserGroupHook.get_connection = classmethod(refuse)\n"
        "socket.socket.connect = refuse\n"
        "import runpy; runpy.run_path(sys.argv[1])\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(ROOT / "dags" / "create_user_group.py")],
                            capture_output=True, text=True, cwd=ROOT / "plugins")
    assert result.returncode == 0, result.stderr[-2000:]
