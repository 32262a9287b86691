"""validate_user on the store: a user as the OSS/BSS holds it, in its group, passes; drift of the user, of its
membership or of its group's name (renamed behind the store's back) fails the check naming the field, the expected
and the found value, and leaves the user out of sync until the OSS/BSS is repaired and the failed task cleared."""

from uuid import UUID

import pytest
from airflow.sdk.exceptions import AirflowFailException
from sqlalchemy import update

from helpers import counts, create, create_user, oss_for, run_on, run_tasks, start_state
from usergroup.airflow.tasks import run_step
from usergroup.ossbss.fake import fake_ossbss_users
from usergroup.workflows.user.terminate_user import terminate_user
from usergroup.workflows.user.validate_user import validate_user


def validate(store, subscription_id: str, **kw) -> dict:
    return run_on(store, validate_user, subscription_id, **kw)


def a_user(store, group: str = "Lab") -> tuple[str, str]:
    """A group and an active user of it in sync: their subscription ids."""
    gid = create(store, group)["subscription_id"]
    return gid, create_user(store, gid, "alice", age=30)["subscription_id"]


def change_user(store, uid: str, **values) -> None:
    """Change the user in the fake OSS/BSS behind the store's back (no call of the client does)."""
    oss = oss_for(store)
    with oss.engine.begin() as conn:
        conn.execute(update(fake_ossbss_users).where(fake_ossbss_users.c.subscription_id == UUID(uid)).values(**values))


def test_a_user_the_oss_holds_as_the_store_says_is_valid(store):
    _, uid = a_user(store)
    with store.transaction() as repo:
        version = repo.get_subscription(uid).version
    held = oss_for(store).read_user(uid)
    done = validate(store, uid, version=version)
    with store.transaction() as repo:
        sub = repo.get_subscription(uid)
        assert sub.status == "active" and sub.insync
        assert repo.get_process(done["process_id"])["status"] == "completed"
        assert [s["task_id"] for s in repo.steps_of(done["process_id"])] == validate_user.task_ids
    assert oss_for(store).read_user(uid) == held  # read only
    assert [c["action"] for c in oss_for(store).changes(uid)] == ["provision_user"]


@pytest.mark.parametrize(("drift", "message"), [
    ({"username": "alicia"}, r"user\.username: expected 'alice', found 'alicia' in the OSS/BSS for subscription"),
    ({"age": 31}, r"user\.age: expected 30, found 31 in the OSS/BSS"),
    ({"age": None, "username": "al"}, r"user\.username: expected 'alice', found 'al'; user\.age: expected 30, "
                                      r"found None in the OSS/BSS"),
    ({"group_id": -1}, r"user\.group\.group_id: expected \d+, found \[\] \(the groups the user is a member of\)"),
    ({"remove": True}, r"user\.user_id: expected \d+, found none: the OSS/BSS holds no user for subscription"),
], ids=["username", "age", "both", "no group", "no user"])
def test_drift_fails_naming_the_field_and_the_user_stays_out_of_sync(store, drift, message):
    gid, uid = a_user(store)
    if drift.get("remove"):
        oss_for(store).deprovision_user(uid)
    else:
        change_user(store, uid, **drift)
    with pytest.raises(AirflowFailException, match=f"check_user_in_ossbss: {message}"):
        validate(store, uid, run_id="drifted")
    with store.transaction() as repo:
        sub = repo.get_subscription(uid)
        (process,) = [p for p in repo.processes_of(uid) if p["workflow_target"] == "VALIDATE"]
        assert not sub.insync and sub.status == "active"
        assert process["status"] == "failed" and process["last_step"] == "check_user_in_ossbss"
        assert "OssBssMismatchError" in process["failed_reason"] and "user." in process["failed_reason"]
        assert repo.get_subscription(gid).insync  # its group is not the one held
    # Until an operator acts, no other workflow runs on it, naming the failed validation.
    with pytest.raises(AirflowFailException, match=f"held by process {process['process_id']}"):
        run_on(store, terminate_user, uid)


def test_a_user_moved_to_another_group_names_the_groups_it_is_a_member_of(store):
    _, uid = a_user(store)
    other = oss_for(store).read_user_group(create(store, "Other Lab")["subscription_id"])["group_id"]
    change_user(store, uid, group_id=other)
    with pytest.raises(AirflowFailException, match=rf"user\.group\.group_id: expected \d+, found \[{other}\] \(the "
                                                   r"groups the user is a member of\) in the OSS/BSS"):
        validate(store, uid)


def test_a_group_renamed_behind_our_back_fails_its_user_until_repaired_and_the_task_cleared(store):
    """The issue's case: the user is out of sync until the OSS/BSS is repaired and the failed check cleared (the
    same process resumes, passes and puts it back in sync), after which a new validation passes too."""
    gid, uid = a_user(store, "Lab")
    oss = oss_for(store)
    oss.drift(gid, group_name="Renamed Lab")
    check = validate_user.task_ids.index("check_user_in_ossbss")
    state = run_tasks(store, validate_user, start_state(validate_user, "renamed", subscription_id=uid, version=None),
                      upto=check, run_id="renamed")
    with pytest.raises(AirflowFailException, match=r"check_user_in_ossbss: user\.group\.group_name: expected 'Lab', "
                                                   r"found 'Renamed Lab' in the OSS/BSS for subscription " + uid):
        run_step(validate_user.steps[check], state, store=store, oss=oss, try_number=1)
    with store.transaction() as repo:
        assert not repo.get_subscription(uid).insync
        assert repo.get_process(state["process_id"])["status"] == "failed"
    with pytest.raises(AirflowFailException, match=f"held by process {state['process_id']}"):
        validate(store, uid)

    oss.drift(gid, group_name="Lab")  # the OSS/BSS repaired; the operator clears the failed task
    state = run_step(validate_user.steps[check], state, store=store, oss=oss, try_number=2)
    run_tasks(store, validate_user, state, after=check + 1, run_id="renamed")
    with store.transaction() as repo:
        assert repo.get_subscription(uid).insync
        assert repo.get_process(state["process_id"])["status"] == "completed"
        tries = [(s["try_number"], s["status"]) for s in repo.steps_of(state["process_id"])
                 if s["task_id"] == "check_user_in_ossbss"]
    assert tries == [(1, "failed"), (2, "success")]
    validate(store, uid)


def test_validate_refuses_what_it_cannot_check_writing_nothing(store):
    gid = create(store, "Half Lab")["subscription_id"]
    provisioning = create_user(store, gid, "half", upto=3)["subscription_id"]
    gone = create_user(store, gid, "gone")["subscription_id"]
    run_on(store, terminate_user, gone)
    before = counts(store)
    for sid, message in [(provisioning, "is provisioning: it cannot be validated"),
                         (gone, "is terminated: it cannot be validated"),
                         (gid, "is a User Group, not a User internal or User external")]:
        with pytest.raises(AirflowFailException, match=message):
            validate(store, sid)
    assert counts(store) == before
