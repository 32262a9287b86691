"""The input step as plain engine calls (no Airflow): declared, asked (suspended), answered, refused, timed out."""

from typing import ClassVar, Literal
from uuid import UUID, uuid4

import pytest

from helpers import USER_EXTERNAL, USER_INTERNAL, create, create_user, run_on
from usergroup.engine.input_step import InputForm, input_step
from usergroup.engine.runner import TaskTry
from usergroup.engine.step import AbortProcess, StepError, step
from usergroup.engine.suspend import answer, ask, kept_answer, refuse, time_out
from usergroup.engine.workflow import create_workflow
from usergroup.workflows.fields import SubscriptionForm
from usergroup.workflows.user.create_user import UserApproval
from usergroup.workflows.user.create_user import create_user as workflow
from usergroup.workflows.user.terminate_user import terminate_user

APPROVE_AT = workflow.task_ids.index("approve_user")


class Confirm(InputForm):
    """Confirm the change"""

    option_field: ClassVar[str] = "choice"
    choice: Literal["Yes", "No"]
    comment: str = ""


def test_a_form_says_its_title_options_and_schema():
    assert (Confirm.title(), Confirm.options()) == ("Confirm the change", ["Yes", "No"])
    schema = Confirm.json_schema()
    assert schema["title"] == "Confirm the change" and schema["x-option-field"] == "choice"
    assert schema["properties"]["choice"]["enum"] == ["Yes", "No"] and schema["required"] == ["choice"]
    assert Confirm(choice="No", comment="later").summary() == "No (comment='later')"


def test_a_form_without_options_fails_where_it_is_declared():
    class Bare(InputForm):
        """Say something"""

        option: str

    with pytest.raises(StepError, match="Bare.option is not a Literal"):
        input_step("Ask", Bare)


def test_the_answer_is_in_the_state_of_the_steps_after_it_and_it_cannot_be_first():
    @input_step("Confirm", Confirm)
    def confirm(choice: str, subscription_id: str) -> dict:
        return {}

    @step("Use it")
    def use(comment: str) -> dict:
        return {}

    @step("Start", returns=("subscription",))
    def start() -> dict:
        return {}

    assert confirm.takes == {"subscription_id"} and confirm.returns == {"choice", "comment"}
    create_workflow("w", "W", "UserGroup", SubscriptionForm, [start, confirm, use])  # `comment` is known after it
    with pytest.raises(StepError, match="takes comment"):
        create_workflow("w", "W", "UserGroup", SubscriptionForm, [start, use, confirm])
    with pytest.raises(StepError, match="its first step confirm cannot ask"):
        create_workflow("w", "W", "UserGroup", SubscriptionForm, [confirm, use])
    assert confirm({"subscription_id": "x", "choice": "Yes", "comment": ""}) == {}
    with pytest.raises(StepError, match="waits for an answer to 'Confirm the change'"):
        confirm({"subscription_id": "x"})


def waiting(store, product: str = USER_EXTERNAL) -> tuple[TaskTry, dict]:
    gid = create(store, f"Ask Lab {uuid4().hex[:6]}")["subscription_id"]
    state = create_user(store, gid, f"u{uuid4().hex[:6]}", upto=APPROVE_AT, product=product)
    return TaskTry(workflow.steps[APPROVE_AT], "approve_user", "CREATE", 1, note="asked"), state


def process_and_step(store, state: dict) -> tuple[dict, dict]:
    with store.transaction() as repo:
        return repo.get_process(state["process_id"]), repo.steps_of(state["process_id"])[-1]


def test_asked_the_process_is_suspended_then_answered_it_runs_with_the_answer(store):
    task, state = waiting(store)
    assert ask(task, state, store=store, oss=None) is None
    process, row = process_and_step(store, state)
    assert (process["status"], process["last_step"]) == ("suspended", "approve_user")
    assert (row["task_id"], row["status"], row["note"]) == ("approve_user", "suspended", "asked")
    assert ask(task, state, store=store, oss=None) is None  # a second try of the task asks again

    done = answer(TaskTry(**{**task.__dict__, "note": "answered by ops"}), state,
                  UserApproval(decision="Approve", note="fine"), store=store, oss=None)
    assert (done["decision"], done["note"]) == ("Approve", "fine")
    process, row = process_and_step(store, state)
    assert (process["status"], row["status"], row["note"]) == ("running", "success", "answered by ops")
    assert ask(task, state, store=store, oss=None) == done  # committed: the state it left, not asked again


def test_an_answer_whose_try_was_lost_is_taken_by_the_next_try_not_asked_again(store):
    """Airflow may retry the task an answer was given to (its scheduler took the resumed task for lost): the process
    keeps the answer until a try takes it, so the retry runs with it; one for another task is not taken, and a
    suspension (a refusal, a new question) forgets it."""
    task, state = waiting(store)
    ask(task, state, store=store, oss=None)
    approval, pid = UserApproval(decision="Approve", note="fine"), UUID(state["process_id"])
    with store.transaction() as repo:
        repo.resume_process(pid, kept_answer("another_task", -1, approval, "ops"))
    assert ask(task, state, store=store, oss=None) is None  # not its answer: asked again, and forgotten
    with store.transaction() as repo:
        assert repo.get_process(pid)["answer"] is None
        repo.resume_process(pid, {**kept_answer("approve_user", -1, approval, "ops"), "fields": {"decision": "?"}})
    assert ask(task, state, store=store, oss=None) is None  # one the form no longer takes: asked again
    with store.transaction() as repo:
        assert repo.get_process(pid)["answer"] is None
        repo.resume_process(pid, kept_answer("approve_user", -1, approval, "ops"))
        assert repo.get_process(pid)["answer"]["fields"] == {"decision": "Approve", "note": "fine",
                                                                           "reason": ""}

    retry = TaskTry(**{**task.__dict__, "try_number": 2})
    done = ask(retry, state, store=store, oss=None)
    assert (done["decision"], done["note"]) == ("Approve", "fine")
    process, row = process_and_step(store, state)
    assert (process["status"], row["status"], row["try_number"]) == ("running", "success", 2)
    assert row["note"].startswith("answered by ops at ") and "Approve" in row["note"]
    assert "taken by try 2" in row["note"]
    assert ask(retry, state, store=store, oss=None) == done  # committed: taken once


def test_a_rejection_aborts_the_process_with_its_reason(store):
    task, state = waiting(store)
    ask(task, state, store=store, oss=None)
    with pytest.raises(AbortProcess, match="rejected: unknown person"):
        answer(task, state, UserApproval(decision="Reject", reason="unknown person"), store=store, oss=None)
    process, row = process_and_step(store, state)
    assert process["status"] == "aborted" and "rejected: unknown person" in process["failed_reason"]
    assert row["status"] == "failed"
    run_on(store, terminate_user, state["subscription_id"])  # the clean-up frees its name
    with store.transaction() as repo:
        assert repo.get_subscription(state["subscription_id"]).status == "terminated"


def test_a_refused_answer_leaves_it_waiting_and_no_answer_in_time_aborts_it(store):
    task, state = waiting(store)
    ask(task, state, store=store, oss=None)
    refuse(TaskTry(**{**task.__dict__, "note": "asked\nrefused: reason missing"}), state, store=store)
    process, row = process_and_step(store, state)
    assert process["status"] == "suspended" and row["note"].endswith("refused: reason missing")
    exc = time_out(task, state, "no answer by tomorrow", store=store)
    assert isinstance(exc, AbortProcess)
    process, _ = process_and_step(store, state)
    assert (process["status"], process["failed_reason"]) == ("aborted", "AbortProcess: no answer by tomorrow")


def test_an_internal_user_is_not_asked(store):
    task, state = waiting(store, USER_INTERNAL)
    assert ask(task, state, store=store, oss=None) == state
    process, row = process_and_step(store, state)
    assert (process["status"], row["status"], row["note"]) == ("running", "success", "not asked")
