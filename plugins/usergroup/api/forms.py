"""orchestrator-core's form protocol over a workflow's one form: the pages a client posts, validated by the same
pydantic form the DAG's first task uses; a missing page is 510 with its JSON schema, an invalid one 400."""

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import to_jsonable_python

from usergroup.domain import Target
from usergroup.domain.subscription import products_of_type
from usergroup.workflow import Workflow


class FormError(Exception):
    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(body.get("title"))
        self.status, self.body = status, body


def pages(workflow: Workflow) -> list[type[BaseModel]]:
    """Page 1 chooses what the workflow acts on (a create: the product; any other: the subscription), page 2
    takes the rest of the workflow's form."""
    fields = workflow.form.model_fields
    if workflow.target == Target.CREATE:
        products = {str(p.product_id): p.name for p in products_of_type(workflow.product_type)}
        first = {"product": (UUID, Field(title="Product", json_schema_extra={"enum": list(products),
                                                                                 "options": products}))}
    else:
        first = {"subscription_id": (fields["subscription_id"].annotation, fields["subscription_id"])}
    rest = {name: (f.annotation, f) for name, f in fields.items() if name not in first}
    config = ConfigDict(extra="forbid")
    return [create_model(f"{workflow.name}_page_1", __config__=config, **first),
            create_model(f"{workflow.name}_page_2", __config__=config, **rest)]


def validate_pages(workflow: Workflow, given: Any) -> dict[str, Any]:
    """The workflow's input from the posted pages, as the DAG's params take it (its run's conf)."""
    if not isinstance(given, list) or not all(isinstance(p, dict) for p in given):
        raise FormError(400, _invalid([{"loc": [], "msg": "the body must be a list of form pages (JSON objects)",
                                        "type": "list_type"}]))
    models = pages(workflow)
    if len(given) < len(models):
        model = models[len(given)]
        raise FormError(510, {"type": "FormNotCompleteError", "title": "Form not complete", "status": 510,
                              "detail": f"{workflow.name} needs {len(models)} form pages, {len(given)} given",
                              "form": model.model_json_schema(),
                              "meta": {"hasNext": len(given) + 1 < len(models)}})
    if len(given) > len(models):
        raise FormError(400, _invalid([{"loc": [len(models)], "msg": f"{workflow.name} takes {len(models)} form "
                                        "pages", "type": "too_long"}]))
    merged: dict[str, Any] = {}
    for page in given:
        merged.update(_one_of_list(workflow, page))
    product = merged.get("product")
    try:
        models[0].model_validate({k: merged[k] for k in models[0].model_fields if k in merged})
        if workflow.target == Target.CREATE:
            _known_product(workflow, product)
        form = {k: v for k, v in merged.items() if k != "product" or "product" in workflow.form.model_fields}
        validated = workflow.form.model_validate(form)
    except ValidationError as exc:
        raise FormError(400, _invalid(exc.errors(include_url=False, include_context=False))) from None
    conf = {k: v for k, v in to_jsonable_python(validated.model_dump()).items() if k in workflow.params}
    return conf | ({"product": str(product)} if "product" in workflow.params else {})


def _one_of_list(workflow: Workflow, page: dict[str, Any]) -> dict[str, Any]:
    """orchestrator-core's forms choose subscriptions as a list (`user_group_ids`): one for our `user_group_id`."""
    out = {}
    for key, value in page.items():
        single = key[:-1] if key.endswith("_ids") else None
        if single and single in workflow.form.model_fields:
            if not isinstance(value, list) or len(value) != 1:
                raise FormError(400, _invalid([{"loc": [key], "msg": "give exactly one id", "type": "list_length",
                                                "input": value}]))
            key, value = single, value[0]
        out[key] = value
    return out


def _known_product(workflow: Workflow, product: Any) -> None:
    ids = {str(p.product_id) for p in products_of_type(workflow.product_type)}
    if str(product) not in ids:
        raise ValidationError.from_exception_data(workflow.name, [{
            "type": "value_error", "loc": ("product",), "input": product,
            "ctx": {"error": ValueError(f"not a product of {workflow.name}")}}])


def _invalid(errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FormValidationError", "title": "Form not valid", "status": 400,
            "detail": "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors),
            "validation_errors": to_jsonable_python(errors, fallback=str)}
