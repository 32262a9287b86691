"""terminate_user_group on the store: an active group, the clean-up of a create that failed or was aborted,
and every refusal (writing nothing); two terminates at once."""

from uuid import UUID, uuid4

import pytest
from airflow.sdk.exceptions import AirflowFailException

from helpers import CUSTOMER, at_once, counts, create, oss_for, run_on
from usergroup.airflow.tasks import run_step
from usergroup.ossbss.errors import OssBssError
from usergroup.store import tables
from usergroup.store.errors import StoreError
from usergroup.workflows.user_group.create_user_group import create_user_group
from usergroup.workflows.user_group.terminate_user_group import terminate_user_group


def terminate(store, subscription_id: str, version: int | None = None, run_id: str | None = None) -> dict:
    return run_on(store, terminate_user_group, subscription_id, run_id=run_id, version=version)


def test_an_active_group_is_deprovisioned_terminated_and_its_name_freed(store):
    created = create(store, "Old Lab")
    done = terminate(store, created["subscription_id"], version=created["subscription"]["version"])
    assert done["customer_id"] == CUSTOMER  # the subscription's own customer, not the state's
    with store.transaction() as repo:
        sub = repo.get_subscription(created["subscription_id"])
        assert sub.status == "terminated" and sub.insync and sub.end_date is not None
        assert repo.get_process(done["process_id"])["status"] == "completed"
    assert [g for g in oss_for(store).groups() if str(g["subscription_id"]) == created["subscription_id"]] == []
    again = create(store, "old lab")  # the name is free again
    with store.transaction() as repo:
        assert repo.get_subscription(again["subscription_id"]).status == "active"


@pytest.mark.parametrize("given_up", ["aborted", "failed"])
def test_a_create_stopped_during_provisioning_is_cleaned_up(store, monkeypatch, given_up):
    """The OSS/BSS made the group, then the step failed before its commit (or the run was stopped): the
    subscription is `provisioning`, out of sync, its name claimed, the group orphaned. Terminate takes it over."""
    state = create(store, "Stranded Lab", upto=3)
    oss = oss_for(store)
    real = oss.provision_user_group

    def provision_then_die(subscription_id, group_name):
        real(subscription_id, group_name)
        raise OssBssError("the answer was lost")

    monkeypatch.setattr(type(oss), "provision_user_group", lambda self, *a: provision_then_die(*a))
    with pytest.raises(OssBssError):
        run_step(create_user_group.steps[3], state, store=store, oss=oss, try_number=1,
                 task_id="provision_user_group")
    monkeypatch.undo()
    pid = UUID(state["process_id"])
    if given_up == "aborted":
        with store.transaction() as repo:
            repo.abort_process(pid, "given up")
    assert len(oss_for(store).groups()) == 1  # the orphan

    done = terminate(store, state["subscription_id"])
    with store.transaction() as repo:
        sub = repo.get_subscription(state["subscription_id"])
        assert sub.status == "terminated" and sub.insync and sub.user_group.group_name == "Stranded Lab"
        creator = repo.get_process(pid)
        assert creator["status"] == "aborted"
        if given_up == "failed":
            reason = f"given up: its subscription is terminated by process {done['process_id']}"
            assert creator["failed_reason"] == reason
    assert oss_for(store).groups() == []
    with pytest.raises(AirflowFailException, match="was aborted"):  # clearing the create now runs nothing
        run_step(create_user_group.steps[3], state, store=store, oss=oss_for(store), try_number=2,
                 task_id="provision_user_group")
    create(store, "Stranded Lab")  # the name is free


def test_refusals_write_nothing(store):
    active = create(store, "Kept Lab")
    in_flight = create(store, "Busy Lab", upto=3)  # its create is still running
    gone = create(store, "Gone Lab")
    terminate(store, gone["subscription_id"])
    before = counts(store)
    cases = [
        (str(uuid4()), None, "no subscription"),
        (active["subscription_id"], 99, "stale data: given version 99 does not match the current version"),
        (in_flight["subscription_id"], None, "is provisioning: only one whose create failed or was aborted"),
        (gone["subscription_id"], None, "is terminated: it cannot be terminated"),
    ]
    for subscription_id, version, message in cases:
        with pytest.raises(AirflowFailException, match=message):
            terminate(store, subscription_id, version)
    assert counts(store) == before


def test_two_terminates_of_one_failed_create_exactly_one_wins(store):
    state = create(store, "Contested Lab", upto=3)
    with store.transaction() as repo:
        repo.abort_process(UUID(state["process_id"]), "given up")
    won, lost = at_once([lambda: terminate(store, state["subscription_id"])] * 5)
    assert len(won) == 1 and len(lost) == 4
    winner = won[0]["process_id"]  # the others were refused at unsync (naming the winner), or after it finished
    with store.transaction() as repo:  # a refused terminate is aborted, never a failed process left to resume
        assert not [p for p in repo.list_processes() if p["status"] == "failed"]
    assert all(f"held by process {winner}" in m or "is terminated" in m or "another process holds it" in m
               for m in lost), lost


def test_a_given_up_create_cannot_be_set_in_sync_and_terminate_still_takes_it(store):
    """set-in-sync on a subscription a create did not finish is refused (it would strand it, in sync but
    provisioning); one an older version did set in sync is still taken by terminate."""
    state = create(store, "Half Made", upto=3)
    with store.transaction() as repo:
        repo.abort_process(UUID(state["process_id"]), "given up")
    with pytest.raises(StoreError, match="is provisioning: its create did not complete.*its terminate workflow"):
        with store.transaction() as repo:
            repo.set_in_sync(UUID(state["subscription_id"]))
    with store.transaction() as repo:
        repo.conn.execute(tables.subscriptions.update().values(insync=True))  # as the old set-in-sync left it
    terminate(store, state["subscription_id"])
    with store.transaction() as repo:
        assert repo.get_subscription(state["subscription_id"]).status == "terminated"


def test_terminates_that_lose_the_race_for_an_active_group_are_aborted(store):
    created = create(store, "Raced Lab")
    won, _ = at_once([lambda: terminate(store, created["subscription_id"])] * 6)
    assert len(won) == 1
    with store.transaction() as repo:
        statuses = sorted(p["status"] for p in repo.list_processes() if p["workflow_name"] == "terminate_user_group")
        assert set(statuses) <= {"completed", "aborted"} and statuses.count("completed") == 1
        sub, changed = repo.set_in_sync(UUID(created["subscription_id"]))  # nothing left holding it
    assert sub.status == "terminated" and not changed
