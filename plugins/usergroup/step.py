"""`step`: a workflow step is a plain function over the state, its parameters filled by name."""

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from usergroup.domain import SubscriptionModel

State = dict[str, Any]


class StepError(Exception):
    """A step cannot run on this state (a parameter it lacks, a subscription in the wrong lifecycle): no retry
    cures it."""


@dataclass(frozen=True)
class Step:
    name: str
    description: str
    func: Callable[..., State]
    task_options: dict[str, Any] = field(default_factory=dict, compare=False)  # e.g. its retry policy

    def __call__(self, state: State, **services: Any) -> State:
        """Run the step: each parameter comes from the state (a subscription typed by its annotation) or,
        failing that, from the services (`repository`, `oss`)."""
        kwargs = {}
        for name, annotation, required in _parameters(self.func):
            if name in state:
                kwargs[name] = _typed(annotation, state[name])
            elif name in services:
                kwargs[name] = services[name]
            elif required:
                raise StepError(f"step {self.name}: {name!r} is neither in the state nor a service")
        return self.func(**kwargs) or {}


def step(description: str, name: str | None = None, **task_options: Any) -> Callable[[Callable[..., State]], Step]:
    """Declare a step; `task_options` (retries, retry_delay, execution_timeout, ...) go to its Airflow task."""

    def wrap(func: Callable[..., State]) -> Step:
        return Step(name=name or func.__name__, description=description, func=func, task_options=task_options)

    return wrap


@cache
def _parameters(func: Callable[..., State]) -> list[tuple[str, Any, bool]]:
    """Each parameter's name, annotation and whether it is required (read once: a bulk run calls a step often)."""
    return [(name, p.annotation, p.default is inspect.Parameter.empty)
            for name, p in inspect.signature(func).parameters.items()]


def _typed(annotation: Any, value: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, SubscriptionModel) and isinstance(value, dict):
        subscription = SubscriptionModel.from_state(value)
        if not isinstance(subscription, annotation):
            # The lifecycle in the state does not fit the step: say so instead of a pydantic dump.
            raise StepError(f"subscription is {type(subscription).__name__}, the step needs {annotation.__name__}")
        return subscription
    return value
