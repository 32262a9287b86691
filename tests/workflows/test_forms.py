"""The workflows' forms and the params derived from them: the trigger form's schema (Airflow's params) refuses what
the first task's pydantic form refuses, and takes what it takes, for every declared workflow."""

from uuid import uuid4

import pytest
from airflow.sdk import Param
from pydantic import ValidationError

from usergroup.engine.discovery import declared
from usergroup.engine.params import params_of
from usergroup.workflows.fields import SubscriptionForm

ID = str(uuid4())
CASES = [
    ({"subscription_id": ID}, True), ({"subscription_id": ID.upper()}, True),
    ({"subscription_id": ID, "version": 3}, True), ({"subscription_id": ID, "version": None}, True),
    ({"subscription_id": f"{{{ID}}}"}, False),
    ({"subscription_id": f"urn:uuid:{ID}"}, False), ({"subscription_id": ID.replace("-", "")}, False),
    ({"subscription_id": f"{ID}\n"}, False), ({"subscription_id": f" {ID}"}, False), ({"subscription_id": ""}, False),
    ({"subscription_id": ID, "version": 0}, False), ({"subscription_id": ID, "version": True}, False),
    ({"subscription_id": ID, "version": "5"}, False), ({"subscription_id": ID, "version": 2.5}, False),
]


def params_accept(conf: dict, schemas: dict | None = None) -> bool:
    schemas = schemas or params_of(SubscriptionForm)
    try:
        for name, schema in schemas.items():
            Param(**schema).resolve(conf.get(name, schema.get("default")))
    except Exception:  # noqa: BLE001 - ParamValidationError, whatever Airflow calls it
        return False
    return True


@pytest.mark.parametrize(("conf", "accepted"), CASES)
def test_the_derived_params_accept_what_the_form_accepts(conf, accepted):
    assert params_accept(conf) is accepted
    if accepted:
        SubscriptionForm.model_validate(conf)
    else:
        with pytest.raises(ValidationError):
            SubscriptionForm.model_validate(conf)


INTERNAL, GROUP = "3f1b7c52-8e4d-4a6b-9c21-5d7e0f3a9b11", str(uuid4())
USER = {"product": INTERNAL, "user_group_id": GROUP, "username": "alice"}
USER_CASES = [
    (USER, True), ({**USER, "age": 0}, True), ({**USER, "age": 150}, True), ({**USER, "age": None}, True),
    ({**USER, "product": "6b3c3a1e-5d0f-4e43-9a2f-2f1e0a8b7c01"}, False),  # the User Group product
    ({**USER, "product": str(uuid4())}, False), ({**USER, "age": -1}, False), ({**USER, "age": 151}, False),
    ({**USER, "age": "30"}, False), ({**USER, "username": ""}, False), ({**USER, "username": " alice"}, False),
    ({**USER, "username": "al\u200bice"}, False), ({**USER, "user_group_id": f"{GROUP}\n"}, False),
]


@pytest.mark.parametrize(("conf", "accepted"), USER_CASES)
def test_create_users_derived_params_accept_what_its_form_accepts(conf, accepted):
    from usergroup.workflows.user.create_user import create_user

    assert params_accept(conf, create_user.params) is accepted
    if accepted:
        create_user.form.model_validate(conf)
    else:
        with pytest.raises(ValidationError):
            create_user.form.model_validate(conf)


def test_the_product_choice_shows_the_products_names():
    from usergroup.workflows.user.create_user import create_user

    product = create_user.params["product"]
    assert [product["values_display"][p] for p in product["enum"]] == ["User internal", "User external"]


# A few cases for every declaration (the bulk run's form included): the derived params and the form agree.
NAMES = ["Lab", "Café Lab", "👩\u200d🔬 Lab", "x" * 255]
BAD_NAMES = ["", " Lab", "Lab\n", "a\u200bb", "x" * 256, 5, None]
SUB = {"subscription_id": ID}
DECLARED_CASES = {
    "create_user_group": [*({"group_name": n} for n in NAMES), *({"group_name": n} for n in BAD_NAMES), {}],
    "modify_user_group": [{**SUB, "group_name": "New"}, {**SUB, "group_name": "New", "version": 2},
                          {**SUB, "group_name": " New"}, {**SUB, "group_name": "New", "version": 0},
                          {"subscription_id": "nope", "group_name": "New"}, SUB],
    "terminate_user_group": [SUB, {**SUB, "version": 1}, {**SUB, "version": "1"}, {"subscription_id": ID[:-1]}, {}],
    "validate_user_group": [SUB, {**SUB, "version": None}, {**SUB, "version": -1}, {"subscription_id": None}],
    "create_user": [USER, {**USER, "age": 42}, {**USER, "username": "x" * 256}, {**USER, "product": None},
                    {**USER, "user_group_id": "nope"}, {k: v for k, v in USER.items() if k != "username"}],
    "modify_user": [{**SUB, "username": "bob"}, {**SUB, "username": "bob", "age": 7, "version": 4},
                    {**SUB, "username": "bob", "age": 151}, {**SUB, "username": "\u202ebob"}, SUB],
    "terminate_user": [SUB, {**SUB, "version": 2.5}, {"subscription_id": ID.replace("-", "")}],
    "validate_user": [SUB, {**SUB, "version": 3}, {**SUB, "version": 0}, {"subscription_id": "nope"}],
    "create_user_groups": [{"group_names": ["A", "B"]}, {"group_names": NAMES}, {"source": "file:///x/names.txt"},
                           {"group_names": []}, {"group_names": ["A", " B"]}, {"group_names": ["A"] * 10_001},
                           {"group_names": "A"}, {"source": ""}, {"source": 3}],
}


def form_accepts(form, conf: dict) -> bool:
    try:
        form.model_validate(conf)
    except ValidationError:
        return False
    return True


def test_every_declaration_has_cases_it_accepts_and_cases_it_refuses():
    assert set(DECLARED_CASES) == {n for n, d in declared().items() if hasattr(d, "form")}
    for name, cases in DECLARED_CASES.items():
        assert {form_accepts(declared()[name].form, c) for c in cases} == {True, False}, name


@pytest.mark.parametrize(("name", "conf"), [(n, c) for n, cases in DECLARED_CASES.items() for c in cases])
def test_every_declarations_derived_params_accept_what_its_form_accepts(name, conf):
    declaration = declared()[name]
    assert params_accept(conf, declaration.params) is form_accepts(declaration.form, conf)


@pytest.mark.parametrize("name", sorted(DECLARED_CASES))
def test_every_declarations_params_build_as_airflow_params(name):
    declaration = declared()[name]
    assert list(declaration.params) == list(declaration.form.model_fields)
    for field, schema in declaration.params.items():
        param = Param(**schema)
        assert param.schema["title"] and param.description, field  # the trigger form shows both
        assert param.serialize()["schema"]["type"] == schema["type"]
