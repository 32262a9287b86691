"""The group name rules, shared by the trigger form's JSON schema and the domain model."""

import re
from typing import Annotated

from pydantic import AfterValidator

GROUP_NAME_MAX_LENGTH = 255

# One pattern for Python's `re.search` (Airflow's params) and the browser's JavaScript (the trigger form):
# no control character anywhere (C0, DEL, C1; this also closes `$` matching before a final newline),
# then a non-space first and last character.
GROUP_NAME_PATTERN = r"^(?![\s\S]*[\x00-\x1f\x7f-\x9f])\S(?:[\s\S]*\S)?$"

GROUP_NAME_RULES = (
    f"1 to {GROUP_NAME_MAX_LENGTH} characters, no leading or trailing whitespace, no control characters; "
    "unique (ignoring case) among the customer's user groups."
)

_PATTERN = re.compile(GROUP_NAME_PATTERN)


def check_group_name(value: str) -> str:
    """Return `value` if it is a valid group name, else raise ValueError saying which rule it breaks."""
    if not isinstance(value, str):
        raise ValueError(f"group_name must be a string, not {type(value).__name__}")
    if not value:
        raise ValueError("group_name must not be empty")
    if len(value) > GROUP_NAME_MAX_LENGTH:
        raise ValueError(f"group_name is {len(value)} characters long, the maximum is {GROUP_NAME_MAX_LENGTH}")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
        raise ValueError("group_name must not contain control characters")
    if value != value.strip() or not _PATTERN.search(value):
        raise ValueError("group_name must not start or end with whitespace")
    return value


def name_key(value: str) -> str:
    """The form under which names are compared for uniqueness (case-insensitive)."""
    return value.casefold()


GroupName = Annotated[str, AfterValidator(check_group_name)]
