"""Airflow's params (the trigger form's JSON schema, one per field) derived from a workflow's pydantic form, its only
input declaration. Pure pydantic: rendering a DAG makes each of them a `Param(**schema)`."""

import enum
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from uuid import UUID

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from usergroup.domain.schema import FieldSchema

_TYPES = {str: "string", UUID: "string", bool: "boolean", int: "integer", float: "number"}
_BOUNDS = {annotated_types.Ge: ("ge", "minimum"), annotated_types.Le: ("le", "maximum"),
           annotated_types.Gt: ("gt", "exclusiveMinimum"), annotated_types.Lt: ("lt", "exclusiveMaximum")}


def params_of(form: type[BaseModel]) -> dict[str, dict[str, Any]]:
    """Each field's JSON schema, in the form's order: its type (`["integer", "null"]` with a `default` of None for
    an optional one), the bounds and lengths its pydantic constraints give (`minimum`, `maxLength`, `minItems`...;
    a list's `items` from its item type), and what `FieldSchema`s on its type and on it add (title, description,
    `pattern`, a choice's `enum` and `values_display`); else pydantic's own `title` and `description`."""
    return {name: param_of(field) for name, field in form.model_fields.items()}


def param_of(field: FieldInfo) -> dict[str, Any]:
    schema = _schema(field.annotation, field.metadata)
    for key in ("title", "description"):
        if key not in schema and getattr(field, key):
            schema[key] = getattr(field, key)
    if not field.is_required():
        schema["default"] = field.get_default(call_default_factory=True)
    return schema


def _schema(annotation: Any, metadata: list[Any]) -> dict[str, Any]:
    annotation, metadata = _unwrap(annotation, metadata)
    nullable = False
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) != 1:
            raise TypeError(f"no params schema for {annotation}: a union other than `<type> | None`")
        nullable = True
        annotation, metadata = _unwrap(members[0], metadata)
    schema = _base(annotation)
    for item in _flat(metadata):
        _constrain(schema, item)
    if nullable:
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema and None not in schema["enum"]:
            schema["enum"] = [*schema["enum"], None]
    return schema


def _unwrap(annotation: Any, metadata: list[Any]) -> tuple[Any, list[Any]]:
    """`Annotated[T, a, b]` as T, its metadata first (a type's own), then the field's."""
    if get_origin(annotation) is Annotated:
        return annotation.__origin__, [*annotation.__metadata__, *metadata]
    return annotation, list(metadata)


def _base(annotation: Any) -> dict[str, Any]:
    origin = get_origin(annotation)
    if origin is list:
        (item,) = get_args(annotation) or (Any,)
        return {"type": "array", **({"items": _schema(item, [])} if item is not Any else {})}
    if origin is Literal:
        values = list(get_args(annotation))
        return {"type": _TYPES[type(values[0])], "enum": values}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        values = [m.value for m in annotation]
        return {"type": _TYPES[type(values[0])], "enum": values}
    for python_type, json_type in _TYPES.items():
        if annotation is python_type:
            return {"type": json_type}
    raise TypeError(f"no params schema for {annotation!r}")


def _flat(metadata: list[Any]) -> list[Any]:
    """Grouped constraints (`Interval`, `Len`, pydantic's `StringConstraints`) as their single ones; a `Field(...)`
    inside a type (a list's item) as its constraints, its title and description."""
    out = []
    for item in metadata:
        if isinstance(item, FieldInfo):
            out.extend([*_flat(item.metadata), FieldSchema(item.title, item.description)])
        elif isinstance(item, annotated_types.GroupedMetadata):
            out.extend(_flat(list(item)))
        else:
            out.append(item)
    return out


def _constrain(schema: dict[str, Any], item: Any) -> None:
    array = schema["type"] == "array"
    if isinstance(item, FieldSchema):
        schema.update({k: v for k, v in (("title", item.title), ("description", item.description)) if v is not None})
        schema.update(item.keywords)
    elif type(item) in _BOUNDS:
        attribute, keyword = _BOUNDS[type(item)]
        schema[keyword] = getattr(item, attribute)
    elif isinstance(item, annotated_types.MinLen):
        schema["minItems" if array else "minLength"] = item.min_length
    elif isinstance(item, annotated_types.MaxLen):
        schema["maxItems" if array else "maxLength"] = item.max_length
    elif isinstance(item, annotated_types.MultipleOf):
        schema["multipleOf"] = item.multiple_of
    elif isinstance(getattr(item, "pattern", None), str):  # pydantic's Field(pattern=...)
        schema["pattern"] = item.pattern
