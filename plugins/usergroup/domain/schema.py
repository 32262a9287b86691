"""What a form that checks its input before sending it (Airflow's trigger form) shows of a field and checks: kept on
the field's type or on the field itself, beside its pydantic validation, which it never changes."""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


class FieldSchema:
    """A field's title, description and JSON schema keywords (`pattern`, `minLength`, `enum`...), in an `Annotated`
    type: `Annotated[str, AfterValidator(check), FieldSchema(pattern=...)]`. `options` (value -> label) is a choice:
    its `enum` and, as Airflow's trigger form shows them, its `values_display`. Pydantic ignores it: neither the
    validation nor pydantic's own JSON schema (the REST API's form) sees it; `usergroup.engine.params` reads it. Several
    on one field (the type's, then the field's) merge, the later winning."""

    __slots__ = ("title", "description", "keywords")

    def __init__(self, title: str | None = None, description: str | None = None, *,
                 options: Mapping[str, str] | None = None, **keywords: Any):
        if options is not None:
            keywords = {"enum": list(options), "values_display": dict(options), **keywords}
        self.title, self.description, self.keywords = title, description, MappingProxyType(keywords)

    def __repr__(self) -> str:
        given = {"title": self.title, "description": self.description, **self.keywords}
        return f"FieldSchema({', '.join(f'{k}={v!r}' for k, v in given.items() if v is not None)})"
