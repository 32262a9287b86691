"""A task killed between the SCIM server's answer and the store's commit: its retry finds what the first try created
by its externalId, and creates no second (the group's, and the user's)."""

import json

import pytest
from test_faults import TaskDied

from helpers import USER_INTERNAL, run_tasks, start_state
from scim import read, scim_server
from usergroup.airflow.tasks import run_step
from usergroup.ossbss import Connection, StorePlace, client_for
from usergroup.workflows.user.create_user import create_user
from usergroup.workflows.user_group.create_user_group import create_user_group


@pytest.fixture
def scim(tmp_path):
    server = scim_server(tmp_path)
    yield server
    server.stop()


def dies_after_the_answer(monkeypatch, oss, call: str) -> list:
    real, answers = getattr(oss, call), []

    def answer_then_die(*args, **kwargs):
        answers.append(real(*args, **kwargs))
        if len(answers) == 1:
            raise TaskDied("killed between the SCIM server's answer and the commit")
        return answers[-1]

    monkeypatch.setattr(oss, call, answer_then_die)
    return answers


def retried(store, oss, workflow, state, at: int) -> dict:
    step, task_id = workflow.steps[at], workflow.task_ids[at]
    with pytest.raises(TaskDied):
        run_step(step, state, store=store, oss=oss, try_number=1, task_id=task_id)
    state = run_step(step, state, store=store, oss=oss, try_number=2, task_id=task_id)
    return run_tasks(store, workflow, state, after=at + 1, run_id="x", oss=oss)


def test_the_retry_of_a_lost_commit_finds_the_group_and_the_user_by_external_id(store, scim, monkeypatch):
    oss = client_for(Connection(conn_id="usergroup_ossbss", **json.loads(scim.connection())), StorePlace(None, "u"))
    at = create_user_group.task_ids.index("provision_user_group")
    state = run_tasks(store, create_user_group, start_state(create_user_group, "lost", group_name="Lost Lab"), at,
                      run_id="lost", oss=oss)
    answers = dies_after_the_answer(monkeypatch, oss, "provision_user_group")
    group = retried(store, oss, create_user_group, state, at)
    [on_server] = read(scim, "Groups")
    assert answers[0] == answers[1] == on_server["id"] == group["subscription"]["user_group"]["group_id"]

    at = create_user.task_ids.index("provision_user")
    form = {"product": USER_INTERNAL, "user_group_id": group["subscription_id"], "username": "lost", "age": None}
    state = run_tasks(store, create_user, start_state(create_user, "lost-user", **form), at, run_id="lost-user",
                      oss=oss)
    answers = dies_after_the_answer(monkeypatch, oss, "provision_user")
    user = retried(store, oss, create_user, state, at)
    [on_server] = read(scim, "Users")
    assert answers[0] == answers[1] == on_server["id"] == user["subscription"]["user"]["user_id"]
    [group_on_server] = read(scim, "Groups")
    assert [m["value"] for m in group_on_server["members"]] == [on_server["id"]]  # a member once
