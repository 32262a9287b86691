"""An input step as Airflow's human-in-the-loop task: it waits in `awaiting_input` (holding no worker slot) for an
answer from Airflow's Required Actions page or REST API, or ours (`airflow.answers.respond`)."""

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param
from airflow.sdk.exceptions import TaskAwaitingInput
from airflow.sdk.execution_time.hitl import upsert_hitl_detail
from pydantic import ValidationError

from usergroup.airflow.services import services
from usergroup.airflow.tasks import airflow_errors, missing_state, opening_of, pydantic_message
from usergroup.engine.input_step import InputStep
from usergroup.engine.params import params_of
from usergroup.engine.runner import TaskTry, stopped_by_sigterm
from usergroup.engine.suspend import answer, ask, refuse, time_out

if TYPE_CHECKING:
    from usergroup.engine.workflow import Workflow


class InputTask(HITLOperator):
    """The task of `step` in `workflow`, after the task `upstream` (whose state it takes). It asks its form (the
    options are the buttons, the other fields Airflow's HITL params), waits, and runs the step with the answer;
    a bad answer is refused in the trail and asked again, until the step's timeout aborts the process."""

    def __init__(self, *, step: InputStep, workflow: "Workflow", upstream: str, task_id: str, **kwargs: Any):
        form = step.form
        fields = {name: Param(**schema) for name, schema in params_of(form).items() if name != form.option_field}
        kwargs.pop("params", None)  # the DAG's (its trigger form): the request's params are the answer's fields
        # response_timeout given, so that the DAG's execution_timeout stays the step's own (HITLOperator would take
        # it as the time to answer); the time to answer is read when the task asks.
        super().__init__(task_id=task_id, task_display_name=step.description, subject=form.title(),
                         options=form.options(), params=fields, response_timeout=timedelta(days=1),
                         **{**step.task_options, **kwargs})
        self.step, self.workflow, self.upstream = step, workflow, upstream

    def execute(self, context: Any) -> Any:
        state, task, store, oss = self._prepare(context)
        deadline = datetime.now(UTC) + self.step.timeout()
        asked = f"asked {self.step.form.title()!r} at {_at(datetime.now(UTC))}, to be answered by {_at(deadline)}"
        with airflow_errors(self.task_id), stopped_by_sigterm():
            done = ask(_noted(task, [asked]), state, store=store, oss=oss)
        if done is not None:
            return done
        self._request(context, state)
        self._park(deadline, [asked])

    def execute_complete(self, context: Any, event: dict[str, Any], deadline: str = "",
                         notes: list[str] | None = None) -> Any:
        state, task, store, oss = self._prepare(context)
        notes, form = list(notes or []), self.step.form
        if "error" in event:
            reason = (f"no answer to {form.title()!r} by {deadline[:19].replace('T', ' ')} UTC"
                      if event.get("error_type") == "timeout" else f"the wait for an answer failed: {event['error']}")
            with airflow_errors(self.task_id):
                raise time_out(_noted(task, [*notes, reason]), state, reason, store=store)
        by = (event.get("responded_by_user") or {}).get("name") or "someone"
        at = event.get("responded_at") or datetime.now(UTC)
        chosen = event.get("chosen_options") or []
        fields = {**(event.get("params_input") or {}),
                  form.option_field: chosen[0] if len(chosen) == 1 else chosen}
        try:
            given = form.model_validate(fields)
        except ValidationError as exc:
            notes.append(f"the answer of {by} at {_at(at)} was refused ({pydantic_message(exc)}): asked again")
            with airflow_errors(self.task_id):
                refuse(_noted(task, notes), state, store=store)
            self.log.warning("Answer refused: %s", pydantic_message(exc))
            self._request(context, state)  # a new request: the refused answer is cleared
            self._park(datetime.fromisoformat(deadline), notes)
        notes.append(f"answered by {by} at {_at(at)}: {given.summary()}")
        with airflow_errors(self.task_id), stopped_by_sigterm():
            return answer(_noted(task, notes), state, given, store=store, oss=oss)

    def _prepare(self, context: Any) -> tuple[dict, TaskTry, Any, Any]:
        ti, dag_run = context["ti"], context["dag_run"]
        store, oss = services(self.task_id)
        task = TaskTry(step=self.step, task_id=self.task_id, workflow_target=str(self.workflow.target),
                       try_number=ti.try_number, map_index=getattr(ti, "map_index", -1),
                       hostname=getattr(ti, "hostname", None))
        state = ti.xcom_pull(task_ids=self.upstream)
        if state is None:
            missing_state(store, task, opening_of(self.workflow, dag_run), context.get("params"))
        return state, task, store, oss

    def _request(self, context: Any, state: dict[str, Any]) -> None:
        """Write Airflow's request (what the Required Actions page shows); writing it again clears its answer."""
        upsert_hitl_detail(ti_id=context["task_instance"].id, options=self.options, subject=self.subject,
                           body=_body(self.workflow, state), defaults=None, multiple=False,
                           params=self.serialized_params, assigned_users=self.assigned_users)

    def _park(self, deadline: datetime, notes: list[str]) -> None:
        """Park the task until it is answered (at once if its request holds an answer), or the deadline passes
        (the scheduler then resumes it with a timeout)."""
        raise TaskAwaitingInput(method_name="execute_complete", timeout=max(deadline - datetime.now(UTC),
                                                                            timedelta(0)),
                                kwargs={"deadline": deadline.isoformat(), "notes": notes})


def _noted(task: TaskTry, notes: list[str]) -> TaskTry:
    return replace(task, note="\n".join(notes))


def _at(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _body(workflow: "Workflow", state: dict[str, Any]) -> str:
    """What the operator decides on (Markdown): the subscription and the workflow's input, as text."""
    head = [f"Process `{state['process_id']}` of **{_md(workflow.title)}**."]
    if isinstance(sub := state.get("subscription"), dict) and sub.get("description"):
        head.append(f"Subscription: {_md(sub['description'])}")
    fields = [f"- {_md(name)}: {_md(str(state.get(name)))}" for name in workflow.form.model_fields]
    return "\n\n".join([*head, "\n".join(fields)])


def _md(text: str) -> str:
    """Text as Markdown shows it literally."""
    return re.sub(r"([\\`*_{}\[\]()<>#+\-.!|~&])", r"\\\1", text)
