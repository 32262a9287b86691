"""`OssBssId`: what the OSS/BSS calls a resource it holds: a number (the fake's) or an opaque string (SCIM's `id`)."""

import re
from typing import Annotated

from pydantic import PlainValidator

OSSBSS_ID_MAX_LENGTH = 255
_NUMBER = re.compile(r"0|[1-9][0-9]{0,17}")  # canonical decimal within a BIGINT: the same id as the number


def ossbss_id(value: object) -> int | str:
    """A number stays one, and so does its text ("7" -> 7: the store keeps ids as text); any other string of 1 to
    255 characters stays a string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        if _NUMBER.fullmatch(value):
            return int(value)
        if 0 < len(value) <= OSSBSS_ID_MAX_LENGTH:
            return value
    raise ValueError(f"an OSS/BSS id is a number or a string of 1 to {OSSBSS_ID_MAX_LENGTH} characters")


OssBssId = Annotated[int | str, PlainValidator(ossbss_id, json_schema_input_type=int | str)]
