"""Reading a stored state back: keep the fields a model still declares, drop those it no longer knows."""

from functools import cache
from typing import Any

from pydantic import BaseModel


def known_fields(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """`data` without the keys `model` (or a nested model of it) does not declare. States written by an older
    deploy stay readable after a field is removed or renamed; models built from new input stay strict."""
    known = {}
    for name, nested in _fields(model):
        if name in data:
            value = data[name]
            known[name] = known_fields(nested, value) if nested is not None and isinstance(value, dict) else value
    return known


@cache
def _fields(model: type[BaseModel]) -> tuple[tuple[str, type[BaseModel] | None], ...]:
    """Each field of the model, with its model if it is one (read once: a bulk run reads thousands of states)."""
    return tuple((name, a if isinstance(a := field.annotation, type) and issubclass(a, BaseModel) else None)
                 for name, field in model.model_fields.items())
