"""The input forms the workflows on an existing subscription share: pydantic for the first task, JSON schema
for Airflow's trigger form."""

import re
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

from usergroup.domain.names import GROUP_NAME_MAX_LENGTH, GROUP_NAME_PATTERN, GROUP_NAME_RULES

# The canonical form only, as the form below takes it (`$` would let a final newline through `re.search`).
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\s\S])"


def _canonical_uuid(value: Any) -> Any:
    if isinstance(value, str) and not re.search(UUID_PATTERN, value):
        raise ValueError(f"{value!r} is not a subscription id (a UUID written as 8-4-4-4-12 hex digits)")
    return value


SubscriptionId = Annotated[UUID, BeforeValidator(_canonical_uuid)]


class SubscriptionForm(BaseModel):
    """Which subscription, and optionally the version the user saw (refused if it changed since). What the
    trigger form's schema refuses, this refuses too (a UUID in another spelling, a version given as text)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    subscription_id: SubscriptionId
    version: StrictInt | None = Field(default=None, ge=1)


def subscription_params(product: str = "User Group") -> dict[str, dict]:
    return {
        "subscription_id": {"type": "string", "title": "Subscription", "pattern": UUID_PATTERN,
                            "description": f"The id of the {product} subscription (a UUID)."},
        "version": {"type": ["integer", "null"], "default": None, "minimum": 1, "title": "Version",
                    "description": "Optional: the subscription's version as you saw it; refused if it changed."},
    }


def group_name_param(title: str, what: str, rules: str = GROUP_NAME_RULES) -> dict:
    """A name's field (a group's name, a username): the rules of `domain.names`."""
    return {"type": "string", "title": title, "description": f"{what}: {rules}", "minLength": 1,
            "maxLength": GROUP_NAME_MAX_LENGTH, "pattern": GROUP_NAME_PATTERN}


AGE_PARAM = {"type": ["integer", "null"], "default": None, "minimum": 0, "maximum": 150, "title": "Age",
             "description": "Optional: the user's age, 0 to 150."}
Age = Annotated[StrictInt | None, Field(ge=0, le=150)]
