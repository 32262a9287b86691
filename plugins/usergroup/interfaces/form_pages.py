"""orchestrator-core's form protocol over a workflow's one form: the pages a client posts, validated by the same
pydantic form the DAG's first task uses; a missing page is 510 with its JSON schema, an invalid one 400."""

import math
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import to_jsonable_python

from usergroup.domain import Target
from usergroup.domain.subscription import products_of_type
from usergroup.engine.discovery import all_workflows
from usergroup.engine.input_step import InputForm, InputStep
from usergroup.engine.workflow import Workflow


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
    """The workflow's input from the posted pages, as the DAG's params take it (its run's conf). The pages given
    are checked first (an invalid one is 400 even if one is missing), then a missing page is 510."""
    if not isinstance(given, list) or not all(isinstance(p, dict) for p in given):
        raise FormError(400, invalid([{"loc": [], "msg": "the body must be a list of form pages (JSON objects)",
                                        "type": "list_type"}]))
    models = pages(workflow)
    if len(given) > len(models):
        raise FormError(400, invalid([{"loc": [len(models)], "msg": f"{workflow.name} takes {len(models)} form "
                                        "pages", "type": "too_long"}]))
    merged, aliases = {}, {}
    for page in given:
        merged.update(_one_of_list(workflow, page, aliases))
    product = merged.get("product")
    try:
        if given:
            models[0].model_validate({k: v for k, v in merged.items() if k in models[0].model_fields
                                      or k not in workflow.form.model_fields})
            if workflow.target == Target.CREATE:
                _known_product(workflow, product)
        if len(given) < len(models):
            model = models[len(given)]
            raise FormError(510, {"type": "FormNotCompleteError", "title": "Form not complete", "status": 510,
                                  "detail": f"{workflow.name} needs {len(models)} form pages, {len(given)} given",
                                  "form": model.model_json_schema(),
                                  "meta": {"hasNext": len(given) + 1 < len(models)}})
        form = {k: v for k, v in merged.items() if k != "product" or "product" in workflow.form.model_fields}
        validated = workflow.form.model_validate(form)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        for e in errors:  # named as the client sent them
            e["loc"] = [aliases.get(part, part) for part in e["loc"]]
        raise FormError(400, invalid(errors)) from None
    conf = {k: v for k, v in to_jsonable_python(validated.model_dump()).items() if k in workflow.params}
    return conf | ({"product": str(product)} if "product" in workflow.params else {})


def _one_of_list(workflow: Workflow, page: dict[str, Any], aliases: dict[str, str]) -> dict[str, Any]:
    """orchestrator-core's forms choose subscriptions as a list (`user_group_ids`): one for our `user_group_id`."""
    out = {}
    for key, value in page.items():
        if any(0xD800 <= ord(c) <= 0xDFFF for c in key):  # not text: pydantic cannot even name it
            raise FormError(400, invalid([{"loc": [key], "msg": "Extra inputs are not permitted",
                                           "type": "extra_forbidden"}]))
        single = key[:-1] if isinstance(key, str) and key.endswith("_ids") else None
        if single and single in workflow.form.model_fields:
            if single in page:
                raise FormError(400, invalid([{"loc": [key], "msg": f"give {key} or {single}, not both",
                                                "type": "value_error"}]))
            if not isinstance(value, list) or len(value) != 1:
                raise FormError(400, invalid([{"loc": [key], "msg": "give exactly one id", "type": "list_length",
                                                "input": value}]))
            aliases[single] = key
            key, value = single, value[0]
        out[key] = value
    return out


def _known_product(workflow: Workflow, product: Any) -> None:
    ids = {str(p.product_id) for p in products_of_type(workflow.product_type)}
    if str(product) not in ids:
        raise ValidationError.from_exception_data(workflow.name, [{
            "type": "value_error", "loc": ("product",), "input": product,
            "ctx": {"error": ValueError(f"not a product of {workflow.name}")}}])


def invalid(errors: list[dict[str, Any]]) -> dict[str, Any]:
    errors = _safe(errors)
    return {"type": "FormValidationError", "title": "Form not valid", "status": 400,
            "detail": "; ".join(": ".join(filter(None, (".".join(map(str, e["loc"])), e["msg"]))) for e in errors),
            "validation_errors": errors}


def _safe(value: Any) -> Any:
    """The client's input echoed as JSON can carry: lone surrogates escaped, NaN and infinities as text."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {_safe(k): _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(v) for v in value]
    return to_jsonable_python(value, fallback=str)


def waiting_step(process: dict[str, Any]) -> InputStep:
    """The input step a suspended process waits at (its last step)."""
    workflow = all_workflows().get(process["workflow_name"])
    step = workflow.step_at(process["last_step"]) if workflow else None
    if not isinstance(step, InputStep):
        said = f"process {process['process_id']} waits at {process['last_step']}, which asks for nothing"
        raise FormError(409, {"title": said, "detail": said, "status": 409})
    return step


def validate_answer(form: type[InputForm], given: Any) -> InputForm:
    """The answer to an input step, posted as orchestrator-core's resume takes it: a list of one form page. None or
    no page is 510 with the form's JSON schema; an invalid page is 400 naming each field that is wrong."""
    if given is None or given == []:
        raise FormError(510, {"type": "FormNotCompleteError", "title": "Form not complete", "status": 510,
                              "detail": f"the process waits for an answer to {form.title()!r}",
                              "form": form.json_schema(), "meta": {"hasNext": False}})
    if not isinstance(given, list) or not all(isinstance(p, dict) for p in given):
        raise FormError(400, invalid([{"loc": [], "msg": "the body must be a list of form pages (JSON objects)",
                                        "type": "list_type"}]))
    if len(given) > 1:
        raise FormError(400, invalid([{"loc": [1], "msg": "the answer is one form page", "type": "too_long"}]))
    try:
        return form.model_validate(given[0])
    except ValidationError as exc:
        raise FormError(400, invalid(exc.errors(include_url=False, include_context=False))) from None
