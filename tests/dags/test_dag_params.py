"""The trigger form's Param rules, checked in-process on the DAG objects' params (what `airflow dags test --conf`
and a trigger validate before any run is made); a real `airflow dags test` refusal per DAG stays in
tests/e2e/test_create_user_group.py and tests/e2e/test_lifecycle.py (no run, no row)."""

import copy
import json

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import ParamValidationError

from helpers import ROOT


@pytest.fixture(scope="module")
def bag():
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag


def refusal(bag, dag_id: str, conf: dict | None) -> str:
    params = copy.deepcopy(bag.dags[dag_id].params)
    with pytest.raises(ParamValidationError) as e:  # a given value is checked as it is set, a missing one after
        params.update(conf or {})
        params.validate()
    return str(e.value)


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        (None, "Invalid input for param group_name: No value passed"),
        ('{"group_name": ""}', "Invalid input for param group_name: '' should be non-empty"),
        ('{"group_name": "   "}', "Invalid input for param group_name"),
        ('{"group_name": " lead"}', "Invalid input for param group_name"),
        ('{"group_name": "tab\\there"}', "Invalid input for param group_name"),
        ('{"group_name": "nl\\n"}', "Invalid input for param group_name"),
        ('{"group_name": null}', "Invalid input for param group_name"),
        ('{"group_name": 42}', "Invalid input for param group_name: 42 is not of type 'string'"),
        (json.dumps({"group_name": "x" * 256}), "is too long"),
        ('{"group_name": ["a"]}', "Invalid input for param group_name: ['a'] is not of type 'string'"),
        ('{"group_name": {"a": 1}}', "Invalid input for param group_name: {'a': 1} is not of type 'string'"),
        ('{"group_name": true}', "Invalid input for param group_name: True is not of type 'string'"),
        ('{"group_name": "nul\\u0000"}', "Invalid input for param group_name"),
        ('{"group_name": "esc\\u001b[0m"}', "Invalid input for param group_name"),
        ('{"group_name": "\\u200b\\u200b"}', "Invalid input for param group_name"),  # only zero-width spaces
        ('{"group_name": "Lab\\u202egpj.exe"}', "Invalid input for param group_name"),  # a right-to-left override
    ],
)
def test_rejected_names_are_refused_by_the_params(bag, conf, message):
    assert message in refusal(bag, "create_user_group", None if conf is None else json.loads(conf))


@pytest.mark.parametrize(("dag_id", "conf", "param"), [
    ("terminate_user_group", {"subscription_id": "not-a-uuid"}, "subscription_id"),
    ("modify_user_group", {"subscription_id": "6b3c3a1e-5d0f-4e43-9a2f-2f1e0a8b7c01", "group_name": ""},
     "group_name"),
])
def test_malformed_input_is_refused_by_the_params(bag, dag_id, conf, param):
    assert f"Invalid input for param {param}" in refusal(bag, dag_id, conf)
