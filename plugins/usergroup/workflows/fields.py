"""The input form fields the workflows share, and the form of the workflows on an existing subscription: pydantic
for the first task and the REST API's form, with what Airflow's trigger form shows and checks (`FieldSchema`, from
which `usergroup.engine.params` derives the params)."""

import re
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

from usergroup.domain.names import invisible
from usergroup.domain.schema import FieldSchema

# The canonical form only, as the form below takes it (`$` would let a final newline through `re.search`).
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\s\S])"


def _canonical_uuid(value: Any) -> Any:
    if isinstance(value, str) and not re.search(UUID_PATTERN, value):
        raise ValueError(f"{value!r} is not a subscription id (a UUID written as 8-4-4-4-12 hex digits)")
    return value


CanonicalUuid = Annotated[UUID, BeforeValidator(_canonical_uuid)]  # for a choice of ids (its enum checks it)
SubscriptionId = Annotated[CanonicalUuid, FieldSchema(pattern=UUID_PATTERN)]


def _subscription_of(product: str) -> FieldSchema:
    return FieldSchema("Subscription", f"The id of the {product} subscription (a UUID).")


class SubscriptionForm(BaseModel):
    """Which User Group subscription, and optionally the version the user saw (refused if it changed since). What
    the trigger form's schema refuses, this refuses too (a UUID in another spelling, a version given as text)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    subscription_id: Annotated[SubscriptionId, _subscription_of("User Group")]
    version: Annotated[StrictInt | None, FieldSchema(
        "Version", "Optional: the subscription's version as you saw it; refused if it changed.")] = Field(
        default=None, ge=1)


class UserSubscriptionForm(SubscriptionForm):
    """Which User subscription (the same rules)."""

    subscription_id: Annotated[SubscriptionId, _subscription_of("User")]


Age = Annotated[StrictInt | None, Field(ge=0, le=150), FieldSchema("Age", "Optional: the user's age, 0 to 150.")]


def _visible(value: str) -> str:
    if bad := invisible(value):
        raise ValueError(f"holds a control or invisible character (U+{ord(bad):04X}): write plain text on one line")
    return value


Remark = Annotated[str, Field(max_length=1000), AfterValidator(_visible)]  # a line an operator writes
