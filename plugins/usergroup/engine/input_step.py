"""`input_step`: a step that waits for an operator's answer to a form (orchestrator-core's `inputstep`)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any, ClassVar, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict

from usergroup.engine.step import State, Step, StepError


class InputForm(BaseModel):
    """What an input step asks: a title (the class docstring's first line), fields, and the options (the values of
    the `Literal` field `option_field`: the buttons an operator presses)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    option_field: ClassVar[str] = "option"

    @classmethod
    def title(cls) -> str:
        return (cls.__doc__ or cls.__name__).strip().splitlines()[0]

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The form as orchestrator-core's API shows it (a JSON schema titled with the form's title)."""
        return {**cls.model_json_schema(), "title": cls.title(), "x-option-field": cls.option_field}

    @classmethod
    def options(cls) -> list[str]:
        annotation = cls.model_fields[cls.option_field].annotation
        if get_origin(annotation) is not Literal:
            raise StepError(f"{cls.__name__}.{cls.option_field} is not a Literal of its options")
        return [str(o) for o in get_args(annotation)]

    def summary(self) -> str:
        """The answer in one line, as the trail records it."""
        rest = ", ".join(f"{k}={v!r}" for k, v in self.model_dump(mode="json").items() if k != self.option_field
                         and v not in ("", None))
        return f"{getattr(self, self.option_field)}" + (f" ({rest})" if rest else "")


@dataclass(frozen=True)
class InputStep(Step):
    """A step that runs with an operator's answer to `form` in its state (its fields, as the step's arguments).
    Its process is `suspended` while it waits; `when` (a function of state keys, like a step's) says whether to ask
    (a process it does not ask goes on, the state unchanged); `timeout` gives how long an answer may take."""

    form: type[InputForm] = InputForm
    when: Callable[..., bool] | None = None
    timeout: Callable[[], timedelta] = lambda: timedelta(days=7)

    @cached_property
    def condition(self) -> Step | None:
        return None if self.when is None else Step(f"{self.name}.when", self.description, self.when)

    @property
    def takes(self) -> frozenset[str]:
        """What it reads of the state before the answer: the answer's fields are not, the condition's are."""
        return (super().takes - set(self.form.model_fields)) | (self.condition.takes if self.condition else set())

    def asks(self, state: State) -> bool:
        return self.condition is None or bool(self.when(**self.condition.arguments(state)))

    def __call__(self, state: State, context: Any = None) -> State:
        """Run with the answer in `state`; a process it does not ask goes on, nothing changed."""
        if not self.asks(state):
            return {}
        if missing := set(self.form.model_fields) - set(state):
            raise StepError(f"step {self.name} waits for an answer to {self.form.title()!r} (no "
                            f"{', '.join(sorted(missing))} in the state)")
        return super().__call__(state, context)


def input_step(description: str, form: type[InputForm], *, when: Callable[..., bool] | None = None,
               timeout: Callable[[], timedelta] | None = None, name: str | None = None, returns: tuple[str, ...] = (),
               **task_options: Any) -> Callable[[Callable[..., State]], InputStep]:
    """Declare an input step: the function runs with the validated answer's fields as arguments (besides any state
    key) and returns its updates (the answer's fields are in the state after it, with `returns`); it may raise
    `AbortProcess` to end the process."""
    form.options()  # a form without options fails where it is declared

    def wrap(func: Callable[..., State]) -> InputStep:
        declared = InputStep(name=name or func.__name__, description=description, func=func,
                             returns=frozenset((*returns, *form.model_fields)), task_options=task_options, form=form,
                             when=when, **({"timeout": timeout} if timeout else {}))
        declared.params  # noqa: B018 - as `step`: an annotation pydantic cannot take fails here
        declared.condition and declared.condition.params  # noqa: B018
        return declared

    return wrap

