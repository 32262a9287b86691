"""validate_user_group on the store: a group as the OSS/BSS holds it passes; drift (renamed or removed behind the
store's back) fails the check naming the field, the expected and the found value, and leaves it out of sync."""

import pytest
from airflow.sdk.exceptions import AirflowFailException

from helpers import counts, create, oss_for, run_on
from usergroup.workflows.user_group.terminate_user_group import terminate_user_group
from usergroup.workflows.user_group.validate_user_group import validate_user_group


def validate(store, subscription_id: str, **kw) -> dict:
    return run_on(store, validate_user_group, subscription_id, **kw)


def test_a_group_the_oss_holds_as_the_store_says_is_valid(store):
    created = create(store, "Valid Lab")
    done = validate(store, created["subscription_id"], version=created["subscription"]["version"])
    with store.transaction() as repo:
        sub = repo.get_subscription(created["subscription_id"])
        assert sub.status == "active" and sub.insync
        assert repo.get_process(done["process_id"])["status"] == "completed"
        assert [s["task_id"] for s in repo.steps_of(done["process_id"])] == validate_user_group.task_ids
    assert [c["action"] for c in oss_for(store).changes(created["subscription_id"])] == ["provision"]  # read only


@pytest.mark.parametrize(("drift", "message"), [
    ({"group_name": "Other Name"}, "group_name: expected 'Drift Lab', found 'Other Name' in the OSS/BSS"),
    ({"remove": True}, r"group_id: expected \d+, found none: the OSS/BSS holds no group for subscription"),
])
def test_drift_fails_naming_the_field_and_the_subscription_stays_out_of_sync(store, drift, message):
    sid = create(store, "Drift Lab")["subscription_id"]
    oss_for(store).drift(sid, **drift)
    with pytest.raises(AirflowFailException, match=f"check_user_group_in_ossbss: {message}"):
        validate(store, sid, run_id="drifted")
    with store.transaction() as repo:
        sub = repo.get_subscription(sid)
        (process,) = [p for p in repo.processes_of(sid) if p["workflow_target"] == "VALIDATE"]
        assert not sub.insync and sub.status == "active"
        assert process["status"] == "failed" and process["last_step"] == "check_user_group_in_ossbss"
        assert "OssBssMismatchError" in process["failed_reason"]
    # Until an operator acts, no other workflow runs on it, naming the failed validation.
    with pytest.raises(AirflowFailException, match=f"held by process {process['process_id']}"):
        run_on(store, terminate_user_group, sid)


def test_validate_refuses_what_it_cannot_check_writing_nothing(store):
    provisioning = create(store, "Half Lab", upto=3)
    gone = create(store, "Gone Lab")
    run_on(store, terminate_user_group, gone["subscription_id"])
    before = counts(store)
    for sid, message in [(provisioning["subscription_id"], "is provisioning: it cannot be validated"),
                         (gone["subscription_id"], "is terminated: it cannot be validated")]:
        with pytest.raises(AirflowFailException, match=message):
            validate(store, sid)
    assert counts(store) == before
