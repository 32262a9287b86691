"""A workflow's form on a subscription's page: its fields (what the page already knows is hidden), and the pages the
API takes built from what the browser posts."""

import re
from dataclasses import dataclass, field
from typing import Any

from usergroup.domain import SubscriptionModel, Target
from usergroup.engine.discovery import all_workflows
from usergroup.engine.workflow import Workflow
from usergroup.interfaces.form_pages import pages


@dataclass
class Field:
    name: str
    label: str = ""
    kind: str = "hidden"  # hidden, text, number or select
    value: Any = None
    required: bool = False
    help: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)
    minimum: int | None = None
    maximum: int | None = None


def reference(product_type: str) -> str:
    """The form field by which a create refers to a subscription of `product_type` (a User's `user_group_id`)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", product_type).lower() + "_id"


def page_field(workflow: Workflow, product_type: str) -> str | None:
    """The field by which `workflow` acts on the subscription whose page it is on, if that page offers it."""
    if workflow.target != Target.CREATE:
        return "subscription_id" if workflow.product_type == product_type else None
    return reference(product_type) if reference(product_type) in workflow.form.model_fields else None


def creates_for(sub: SubscriptionModel) -> list[Workflow]:
    """The creates that start from this subscription (for a User Group: add a user)."""
    return [w for w in sorted(all_workflows().values(), key=lambda w: w.name)
            if w.target == Target.CREATE and page_field(w, sub.product.product_type)]


def fields(workflow: Workflow, sub: SubscriptionModel) -> list[Field]:
    known = {"subscription_id": sub.subscription_id, "version": sub.version,
             reference(sub.product.product_type): sub.subscription_id}
    if workflow.target == Target.CREATE:
        known.pop("subscription_id")
    current = {k: v for block in sub.product_fields().values() if hasattr(block, "model_dump")
               for k, v in block.model_dump().items()} if workflow.target != Target.CREATE else {}
    out = []
    for name, schema in workflow.params.items():
        if name in known:
            out.append(Field(name, value=known[name]))
            continue
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        one = Field(name, schema.get("title", name), "text", current.get(name), "null" not in types,
                    schema.get("description", ""))
        if "enum" in schema:
            labels = schema.get("values_display", {})
            one.kind, one.options = "select", [(v, labels.get(v, v)) for v in schema["enum"]]
        elif "integer" in types:
            one.kind, one.minimum, one.maximum = "number", schema.get("minimum"), schema.get("maximum")
        out.append(one)
    return out


def posted_pages(workflow: Workflow, posted: dict[str, str]) -> list[dict[str, str]]:
    """The form pages the API takes: what the browser posted, an empty optional field left out."""
    given = {k: _number(v) if "integer" in str(workflow.params[k].get("type")) else v for k, v in posted.items()
             if k in workflow.params and (v != "" or k in _required(workflow))}
    return [{k: v for k, v in given.items() if k in model.model_fields} for model in pages(workflow)]


def _required(workflow: Workflow) -> set[str]:
    return {n for n, f in workflow.form.model_fields.items() if f.is_required()}


def _number(value: str) -> int | str:
    """A whole number as the form's field takes it; anything else as typed, for the form to refuse by name."""
    return int(value) if re.fullmatch(r"[+-]?[0-9]{1,30}", value.strip()) else value
