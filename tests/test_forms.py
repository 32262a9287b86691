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


def params_accept(conf: dict) -> bool:
    schemas = subscription_params()
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
