"""The API's form protocol over a workflow's form: 510 with the next page, 400 with pydantic's errors, the run's
conf as the DAG's params take it."""

from uuid import uuid4

import pytest
from airflow.sdk import Param

from helpers import USER_GROUP, USER_INTERNAL
from usergroup.engine.discovery import all_workflows
from usergroup.interfaces.form_pages import FormError, validate_pages

GID = str(uuid4())


def post(workflow: str, pages) -> dict:
    return validate_pages(all_workflows()[workflow], pages)


def error(workflow: str, pages) -> FormError:
    with pytest.raises(FormError) as caught:
        post(workflow, pages)
    return caught.value


@pytest.mark.parametrize(("workflow", "pages", "conf"), [
    ("create_user_group", [{"product": USER_GROUP}, {"group_name": "Lab"}], {"group_name": "Lab"}),
    ("create_user", [{"product": USER_INTERNAL}, {"user_group_ids": [GID], "username": "u", "age": 30}],
     {"product": USER_INTERNAL, "user_group_id": GID, "username": "u", "age": 30}),
    ("modify_user_group", [{"subscription_id": GID}, {"group_name": "New"}],
     {"subscription_id": GID, "group_name": "New", "version": None}),
    ("terminate_user_group", [{"subscription_id": GID}, {}], {"subscription_id": GID, "version": None}),
    ("validate_user_group", [{"subscription_id": GID}, {"version": 3}], {"subscription_id": GID, "version": 3}),
])
def test_complete_pages_give_the_runs_conf_which_the_params_accept(workflow, pages, conf):
    assert post(workflow, pages) == conf
    params = all_workflows()[workflow].params
    for name, schema in params.items():
        Param(**schema).resolve(conf.get(name, schema.get("default")))


def test_a_missing_page_is_510_with_its_schema():
    first = error("create_user", [])
    assert first.status == 510 and first.body["meta"] == {"hasNext": True}
    assert first.body["form"]["properties"]["product"]["options"] == {USER_INTERNAL: "User internal",
                                                                      "3f1b7c52-8e4d-4a6b-9c21-5d7e0f3a9b12":
                                                                      "User external"}
    second = error("create_user", [{"product": USER_INTERNAL}])
    assert second.status == 510 and second.body["meta"] == {"hasNext": False}
    assert set(second.body["form"]["properties"]) == {"user_group_id", "username", "age"}
    assert error("modify_user_group", []).body["form"]["required"] == ["subscription_id"]


@pytest.mark.parametrize(("workflow", "pages", "loc", "msg"), [
    ("create_user_group", [{"product": USER_INTERNAL}, {"group_name": "x"}], ["product"], "not a product of"),
    ("create_user_group", [{"product": USER_GROUP}, {"group_name": " x"}], ["group_name"], "whitespace"),
    ("create_user_group", [{"product": USER_GROUP}, {"group_nam": "x"}], ["group_nam"], "Extra inputs"),
    ("create_user", [{"product": USER_INTERNAL}, {"user_group_ids": [GID, GID], "username": "u"}],
     ["user_group_ids"], "exactly one"),
    ("create_user", [{"product": USER_INTERNAL}, {"user_group_ids": [GID], "username": "u", "age": 151}],
     ["age"], "less than or equal to 150"),
    ("modify_user_group", [{"subscription_id": "nope"}, {"group_name": "x"}], ["subscription_id"],
     "is not a subscription id"),
    ("terminate_user_group", [{"subscription_id": GID}, {}, {}], [2], "takes 2 form pages"),
])
def test_invalid_pages_are_400_naming_the_field(workflow, pages, loc, msg):
    refused = error(workflow, pages)
    assert refused.status == 400
    assert any(e["loc"] == loc and msg in e["msg"] for e in refused.body["validation_errors"]), refused.body


@pytest.mark.parametrize(("pages", "loc"), [
    ([{"product": USER_GROUP}, {"group_name": "a\ud800b"}], ["group_name"]),
    ([{"product": USER_GROUP}, {"group_name": float("nan")}], ["group_name"]),
    ([{"product": float("inf")}, {"group_name": "x"}], ["product"]),
    ([{"product": USER_GROUP}, {"group_name": "x", "x\udfff": 1}], ["x\\udfff"]),
])
def test_input_json_cannot_carry_is_echoed_safely(pages, loc):
    import json

    refused = error("create_user_group", pages)
    assert refused.status == 400 and any(e["loc"] == loc for e in refused.body["validation_errors"]), refused.body
    json.dumps(refused.body, allow_nan=False).encode()  # the response can be written


def test_page_one_is_checked_before_asking_for_page_two_and_errors_name_what_was_sent():
    assert error("create_user_group", [{}]).status == 400
    assert error("terminate_user_group", [{"subscription_id": "nope"}]).status == 400
    both = error("create_user", [{"product": USER_INTERNAL}, {"user_group_ids": [GID], "user_group_id": GID,
                                                              "username": "u"}])
    assert both.status == 400 and "not both" in both.body["detail"]
    bad = error("create_user", [{"product": USER_INTERNAL}, {"user_group_ids": ["nope"], "username": "u"}])
    assert [e["loc"] for e in bad.body["validation_errors"]] == [["user_group_ids"]]
