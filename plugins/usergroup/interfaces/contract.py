"""What the API's OpenAPI declares beyond its routes' types: the error bodies each status carries, and the shapes of
`range`, `sort` and `filter` (the routes check a value against the same pattern the schema gives)."""

import re
from typing import Any, Literal

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict


class Problem(BaseModel):
    """An error: what is wrong and the HTTP status."""

    model_config = ConfigDict(extra="allow")
    detail: str
    status: int


class FormValidationError(BaseModel):
    """orchestrator-core's answer to a form page that is not valid: every field that is wrong."""

    type: Literal["FormValidationError"]
    title: str
    status: Literal[400]
    detail: str
    validation_errors: list[dict[str, Any]]


class FormNotCompleteError(BaseModel):
    """orchestrator-core's answer to a form given without its next page: that page's JSON schema, to fill in."""

    type: Literal["FormNotCompleteError"]
    title: str
    status: Literal[510]
    detail: str
    form: dict[str, Any]
    meta: dict[str, Any]


LOGIN = {401: "Not logged in to Airflow (no token, or one that has expired)",
         403: "The user may not do this (Airflow's DAG permissions)"}
FORM = {400: ("The form page is not valid (or the body is not JSON)", FormValidationError | Problem),
        510: ("The form is not complete: the next page's form, to fill in", FormNotCompleteError)}


def answers(why: dict[int, str | tuple[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route: the login's statuses and those given (`Problem` bodies unless a model is given),
    each with its description."""
    declared = {}
    for status, said in sorted({**LOGIN, **why}.items()):
        description, model = said if isinstance(said, tuple) else (said, Problem)
        declared[status] = {"description": description, "model": model}
    return declared


CONTENT_RANGE = {"Content-Range": {"description": "`<items> <start>-<end>/<total>`: the page given and how many "
                                                  "match in all", "schema": {"type": "string"}}}
RANGE = r"^[0-9]{1,9},[0-9]{1,9}$"


def pairs(*fields: str, values: str) -> str:
    """A comma-separated list of (field, value) pairs, the fields those given."""
    pair = f"(?:{'|'.join(map(re.escape, fields))}),{values}"
    return f"^{pair}(?:,{pair})*$"


def shaped(value: str | None, pattern: str, what: str, hint: str) -> str | None:
    """`value` if it has the shape the schema declares, else 400 naming the parameter."""
    if value is not None and not re.fullmatch(pattern, value):
        raise HTTPException(400, f"{what} {value!r}: {hint}")
    return value
