"""The forms of the workflows on a subscription: the first task's pydantic form refuses what the trigger form's
schema (Airflow's params) refuses, and takes what it takes."""

from uuid import uuid4

import pytest
from airflow.sdk import Param
from pydantic import ValidationError

from usergroup.forms import SubscriptionForm, subscription_params

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
    schemas = schemas or subscription_params()
    try:
        for name, schema in schemas.items():
            Param(**schema).resolve(conf.get(name, schema.get("default")))
    except Exception:  # noqa: BLE001 - ParamValidationError, whatever Airflow calls it
        return False
    return True


@pytest.mark.parametrize(("conf", "accepted"), CASES)
def test_the_form_and_the_params_agree(conf, accepted):
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
def test_create_user_form_and_params_agree(conf, accepted):
    from usergroup.workflows.create_user import create_user

    assert params_accept(conf, create_user.params) is accepted
    if accepted:
        create_user.form.model_validate(conf)
    else:
        with pytest.raises(ValidationError):
            create_user.form.model_validate(conf)


def test_the_product_choice_shows_the_products_names():
    from usergroup.workflows.create_user import create_user

    product = create_user.params["product"]
    assert [product["values_display"][p] for p in product["enum"]] == ["User internal", "User external"]
