"""Airflow's params derived from a pydantic form: each field's JSON schema, from its type, its constraints and the
`FieldSchema`s on its type and on it; pydantic's own JSON schema (the REST API's form) does not change."""

import enum
from typing import Annotated, Literal

import pytest
from airflow.sdk import Param
from pydantic import AfterValidator, BaseModel, Field, StrictInt, StringConstraints

from usergroup.domain.schema import FieldSchema
from usergroup.engine.params import params_of

Code = Annotated[str, AfterValidator(str.upper), FieldSchema(pattern="^[a-z]+$", minLength=1)]


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Form(BaseModel):
    code: Annotated[Code, FieldSchema("Code", "Lower-case letters.")]
    count: Annotated[StrictInt | None, Field(ge=1, le=9)] = None
    tags: Annotated[list[Annotated[Code, FieldSchema(maxLength=8)]], Field(min_length=1, max_length=3)]
    size: Literal["S", "M"] = "S"
    colour: Colour | None = Field(default=None, title="Colour", description="Optional.")
    plain: Annotated[str, StringConstraints(min_length=2, pattern="^x")]
    choice: Annotated[str, FieldSchema("Choice", options={"a": "Ay", "b": "Bee"})]


def test_each_field_gets_its_type_constraints_title_and_description():
    params = params_of(Form)
    assert list(params) == list(Form.model_fields)
    assert params["code"] == {"type": "string", "title": "Code", "description": "Lower-case letters.",
                              "pattern": "^[a-z]+$", "minLength": 1}
    assert params["count"] == {"type": ["integer", "null"], "default": None, "minimum": 1, "maximum": 9}
    assert params["tags"] == {"type": "array", "minItems": 1, "maxItems": 3,
                              "items": {"type": "string", "pattern": "^[a-z]+$", "minLength": 1, "maxLength": 8}}
    assert params["size"] == {"type": "string", "enum": ["S", "M"], "default": "S"}
    assert params["colour"] == {"type": ["string", "null"], "enum": ["red", "blue", None], "default": None,
                                "title": "Colour", "description": "Optional."}
    assert params["plain"] == {"type": "string", "minLength": 2, "pattern": "^x"}
    assert params["choice"] == {"type": "string", "title": "Choice", "enum": ["a", "b"],
                                "values_display": {"a": "Ay", "b": "Bee"}}
    for schema in params.values():
        Param(**schema)


def test_field_schemas_do_not_change_pydantic_or_its_json_schema():
    class Bare(BaseModel):
        code: Annotated[str, AfterValidator(str.upper)]

    assert Form.model_json_schema()["properties"]["code"] == Bare.model_json_schema()["properties"]["code"]
    assert Form.model_validate({"code": "ab", "tags": ["c"], "plain": "xy", "choice": "z"}).code == "AB"


def test_a_type_it_cannot_say_is_refused_at_once():
    class Odd(BaseModel):
        both: int | str

    class Mapping(BaseModel):
        table: dict[str, int]

    for form in (Odd, Mapping):
        with pytest.raises(TypeError, match="no params schema"):
            params_of(form)
