"""LifecycleError, and how a refused transition is told: by block and field."""

from typing import Any

from pydantic import ValidationError


class LifecycleError(ValueError):
    """A subscription cannot take a lifecycle state: a mandatory field is missing or invalid."""


def describe(model: Any, exc: ValidationError, status: Any) -> str:
    """"UserGroup (active): UserGroupBlock.group_id is required" for each problem pydantic found."""
    problems = []
    for err in exc.errors():
        loc = list(err["loc"])
        if loc and loc[0] in model.block_fields():
            loc[0] = model.model_fields[loc[0]].annotation.__name__
        missing = err["type"] == "missing" or err.get("input", 0) is None
        what = "is required" if missing else f"is invalid: {err['msg']}"
        problems.append(f"{'.'.join(map(str, loc))} {what}")
    return f"{model.__name__} ({status}): " + "; ".join(problems)
