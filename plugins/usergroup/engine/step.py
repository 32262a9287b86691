"""`step`: a workflow step is a plain function over the state, its arguments typed by their annotations."""

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from pydantic import TypeAdapter, ValidationError

from usergroup.domain import SubscriptionModel, Target

if TYPE_CHECKING:
    from usergroup.domain.product import Product
    from usergroup.ossbss.client import OssBssClient

State = dict[str, Any]


class StepError(Exception):
    """A step cannot run on this state (an argument it lacks or cannot take, a subscription in the wrong
    lifecycle): no retry cures it."""


class AbortProcess(StepError):  # noqa: N818 - orchestrator-core's word: the step ends its process, aborted
    """The process will not go on (an operator said no): it ends `aborted`, with this reason."""


class StepStore(Protocol):
    """The store as a step sees it (the runner's chunk: claims and links are written with its trail)."""

    def get_subscription(self, subscription_id: UUID) -> SubscriptionModel | None: ...
    def product_of(self, subscription_id: UUID) -> "Product | None": ...
    def refusal_context(self, sub: SubscriptionModel) -> dict[str, Any]: ...
    def claim_name(self, product_type: str, scope: UUID, name: str, process_id: UUID,
                   subscription_id: UUID | None = None) -> None: ...
    def lock_in_sync(self, subscription_id: UUID, product_type: str) -> SubscriptionModel: ...
    def unsync(self, subscription_id: UUID, process_id: UUID, target: Target,
               seen_version: int | None = None) -> SubscriptionModel: ...
    def link_subscription(self, process_id: UUID, subscription_id: UUID, workflow_target: str) -> None: ...
    def complete_process(self, process_id: UUID) -> None: ...


@dataclass(frozen=True)
class StepContext:
    """What a step reaches besides its state: a parameter annotated `StepContext` gets it. The runner gives
    both; a unit test gives what its step uses."""

    store: StepStore | None = None
    oss: "OssBssClient | None" = None


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "context", "subscription" (a lifecycle class), or "value" (validated by its annotation)
    required: bool
    cls: Any = None
    adapter: TypeAdapter | None = None


@dataclass(frozen=True)
class Step:
    name: str
    description: str
    func: Callable[..., State]
    returns: frozenset[str] = frozenset()  # the state keys it may return
    task_options: dict[str, Any] = field(default_factory=dict, compare=False)  # e.g. its retry policy

    @cached_property
    def params(self) -> tuple[Param, ...]:
        """Each parameter, read once (a bulk run calls a step often)."""
        return tuple(_param(self.name, name, p) for name, p in inspect.signature(self.func).parameters.items())

    @property
    def takes(self) -> frozenset[str]:
        """The state keys it reads."""
        return frozenset(p.name for p in self.params if p.kind != "context")

    def __call__(self, state: State, context: StepContext | None = None) -> State:
        """Run the step: each argument is the state's value of its name, as its annotation says (a UUID as
        `UUID`, a subscription as its lifecycle class), or the context."""
        result = self.func(**self.arguments(state, context)) or {}
        if undeclared := set(result) - self.returns:
            raise StepError(f"step {self.name} returned {', '.join(sorted(undeclared))}, which it does not declare")
        return result

    def arguments(self, state: State, context: StepContext | None = None) -> dict[str, Any]:
        kwargs = {}
        for p in self.params:
            if p.kind == "context":
                kwargs[p.name] = context or StepContext()
            elif p.name in state:
                kwargs[p.name] = _typed(self.name, p, state[p.name])
            elif p.required:
                raise StepError(f"step {self.name}: {p.name!r} is not in the state")
        return kwargs


def step(description: str, name: str | None = None, returns: tuple[str, ...] = (),
         **task_options: Any) -> Callable[[Callable[..., State]], Step]:
    """Declare a step and the state keys it `returns`; `task_options` (retries, retry_delay, execution_timeout,
    ...) go to its Airflow task."""

    def wrap(func: Callable[..., State]) -> Step:
        declared = Step(name=name or func.__name__, description=description, func=func, returns=frozenset(returns),
                        task_options=task_options)
        declared.params  # noqa: B018 - read where the step is declared: an annotation pydantic cannot take fails here
        return declared

    return wrap


def _param(step_name: str, name: str, p: inspect.Parameter) -> Param:
    annotation, required = p.annotation, p.default is inspect.Parameter.empty
    if annotation is StepContext:
        return Param(name, "context", False)
    if isinstance(annotation, type) and issubclass(annotation, SubscriptionModel):
        return Param(name, "subscription", required, cls=annotation)
    if annotation is inspect.Parameter.empty:
        return Param(name, "value", required)  # taken as the state holds it
    return Param(name, "value", required, adapter=TypeAdapter(annotation))


def _typed(step_name: str, p: Param, value: Any) -> Any:
    if p.kind == "subscription":
        if not isinstance(value, SubscriptionModel | dict):
            raise StepError(f"step {step_name}: {p.name} is {value!r}, not a subscription")
        subscription = value if isinstance(value, SubscriptionModel) else SubscriptionModel.from_state(value)
        if not isinstance(subscription, p.cls):
            # The lifecycle in the state does not fit the step: say so instead of a pydantic dump.
            raise StepError(f"subscription is {type(subscription).__name__}, the step needs {p.cls.__name__}")
        return subscription
    if p.adapter is None:
        return value
    try:
        return p.adapter.validate_python(value)
    except ValidationError as exc:
        raise StepError(f"step {step_name}: {p.name}={value!r}: {exc.errors()[0]['msg']}") from None
