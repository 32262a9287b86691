"""Reading a stored state back: keep the fields a model still declares, drop those it no longer knows."""

from typing import Any

from pydantic import BaseModel


def known_fields(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """`data` without the keys `model` (or a nested model of it) does not declare. States written by an older
    deploy stay readable after a field is removed or renamed; models built from new input stay strict."""
    known = {}
    for name, field in model.model_fields.items():
        if name not in data:
            continue
        value, annotation = data[name], field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(value, dict):
            value = known_fields(annotation, value)
        known[name] = value
    return known
