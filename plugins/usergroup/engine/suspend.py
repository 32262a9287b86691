"""An input step's task: it asks (its process is suspended), then its answer runs the step; a bad answer is refused
and it asks again; no answer in time aborts the process."""

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from usergroup.domain import ProcessStatus
from usergroup.engine.input_step import InputForm, InputStep
from usergroup.engine.runner import TaskTry, record_failures, run_one
from usergroup.engine.step import AbortProcess, State
from usergroup.store.repository import Store


def ask(task: TaskTry, state: State, *, store: Store, oss: Any) -> State | None:
    """The process is suspended at the task, the trail saying what it waits for (`task.note`): None, it waits. A
    process the step does not ask goes on at once, and one whose task committed already (a try that died after its
    commit) gets that state. One answered already takes its answer: the try it was given to was lost (Airflow
    retried it, or its worker died before the step committed)."""
    step: InputStep = task.step
    if not step.asks(state):
        return run_one(replace(task, note="not asked"), state, store=store, oss=oss)
    pid = UUID(state["process_id"])
    with store.transaction() as repo:
        row = repo.enter_step(pid, task.task_id, task.map_index)
        if row.done_try is not None:
            return row.done_state
        given = row.answer if (row.answer or {}).get("task_id") == task.task_id and \
            row.answer.get("map_index", -1) == task.map_index else None
        form = _valid(step.form, given)
        if form is None:  # asked (again: a kept answer the form no longer takes is forgotten)
            repo.suspend_process(pid)
            repo.record_steps([{**task.row(datetime.now(UTC)), "process_id": pid, "status": "suspended",
                                "state": None, "error": None}])
    if form is None:
        return None
    note = (f"answered by {given['by']} at {given['at']}: {form.summary()} (taken by try {task.try_number}: the try "
            "it was given to did not take it)")
    return answer(replace(task, note=note), state, form, store=store, oss=oss)


def _valid(form: type[InputForm], given: dict[str, Any] | None) -> InputForm | None:
    try:
        return None if given is None else form.model_validate(given["fields"])
    except (ValidationError, KeyError, TypeError):
        return None


def kept_answer(task_id: str, map_index: int, form: InputForm, by: str) -> dict[str, Any]:
    """An answer as its process keeps it until the task it was given to takes it (`Processes.resume_process`)."""
    return {"task_id": task_id, "map_index": map_index, "fields": form.model_dump(mode="json"), "by": by,
            "at": f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"}


def answer(task: TaskTry, state: State, given: InputForm, *, store: Store, oss: Any) -> State:
    """Run the step with the answer's fields in its state (`run_one`: the trail's row says who answered, when and
    what, in `task.note`); a step that says no (`AbortProcess`) ends the process aborted."""
    return run_one(task, {**state, **given.model_dump(mode="json")}, store=store, oss=oss)


def refuse(task: TaskTry, state: State, *, store: Store) -> None:
    """A bad answer counts for nothing: the trail says why (`task.note`), and the process waits still."""
    pid = UUID(state["process_id"])
    with store.transaction() as repo:
        repo.suspend_process(pid)  # an answer through our interfaces had set it running
        repo.record_steps([{**task.row(datetime.now(UTC)), "process_id": pid, "status": "suspended", "state": None,
                            "error": None}])


def time_out(task: TaskTry, state: State, reason: str, *, store: Store) -> AbortProcess:
    """No answer in time: the process is aborted with `reason` (returned, for the task to fail with)."""
    exc = AbortProcess(reason)
    record_failures(store, task, {UUID(state["process_id"]): exc}, datetime.now(UTC), ProcessStatus.ABORTED)
    return exc
