"""The in-sync lock: `unsync` is atomic; 20 concurrent workflows on one subscription, exactly one wins."""

import threading
from uuid import UUID, uuid4

import pytest
from airflow.sdk.exceptions import AirflowFailException

from helpers import oss_for
from usergroup.airflow.tasks import run_step
from usergroup.domain import USER_GROUP_PRODUCT, UserGroupInactive
from usergroup.engine.generic_steps import unsync
from usergroup.store.errors import OutOfSyncError

CONCURRENT = 20


@pytest.fixture
def in_sync_subscription(store):
    """An active group in sync, as a create leaves it."""
    sub = UserGroupInactive.from_product_id(USER_GROUP_PRODUCT.product_id, uuid4())
    sub.user_group.group_name, sub.user_group.group_id = "Locked Lab", 7
    sub = UserGroupInactive.from_other_lifecycle(sub, "active")
    sub.insync = True
    with store.transaction() as repo:
        return repo.save_subscription(sub)


def start_modify(store, sub) -> dict:
    """A process of a later (modify) workflow, linked to the subscription as store_process_subscription does."""
    pid = uuid4()
    with store.transaction() as repo:
        repo.start_process(pid, workflow_name="modify_user_group", workflow_target="MODIFY", dag_id="modify",
                           run_id=str(pid), created_by="test", input_state={})
        repo.link_subscription(pid, sub.subscription_id, "MODIFY")
    return {"process_id": str(pid), "subscription_id": str(sub.subscription_id), "workflow_target": "MODIFY"}


def test_a_second_workflow_fails_at_once_naming_the_holder(store, in_sync_subscription):
    first, second = start_modify(store, in_sync_subscription), start_modify(store, in_sync_subscription)
    state = run_step(unsync, first, store=store, oss=oss_for(store), try_number=1)
    assert state["subscription"]["insync"] is False
    sid = in_sync_subscription.subscription_id
    expected = f"subscription {sid} is out of sync; held by process {first['process_id']}"
    with pytest.raises(AirflowFailException, match=expected):
        run_step(unsync, second, store=store, oss=oss_for(store), try_number=1)


def test_concurrent_unsync_exactly_one_wins(store, in_sync_subscription):
    states = [start_modify(store, in_sync_subscription) for _ in range(CONCURRENT)]
    barrier = threading.Barrier(CONCURRENT)
    won, lost, other = [], [], []

    def attempt(state):
        barrier.wait()
        try:
            run_step(unsync, state, store=store, oss=oss_for(store), try_number=1)
            won.append(state["process_id"])
        except AirflowFailException as exc:
            (lost if isinstance(exc.__cause__, OutOfSyncError) else other).append(exc)
        except Exception as exc:  # noqa: BLE001 - collected and asserted empty below
            other.append(exc)

    threads = [threading.Thread(target=attempt, args=(s,)) for s in states]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert other == []
    assert len(won) == 1 and len(lost) == CONCURRENT - 1
    assert all(f"held by process {won[0]}" in str(e) for e in lost)
    with store.transaction() as repo:
        sub = repo.get_subscription(in_sync_subscription.subscription_id)
        assert sub.insync is False and sub.version == in_sync_subscription.version + 2


def test_unsync_refuses_a_lifecycle_the_workflow_cannot_act_on(store, in_sync_subscription):
    """A workflow that passed its input check while another one terminated the subscription: its unsync, in
    the same conditional UPDATE, refuses (no double terminate, no modify of a terminated group)."""
    with store.transaction() as repo:
        sub = UserGroupInactive.from_other_lifecycle(in_sync_subscription, "terminated")
        repo.save_subscription(sub)
    state = start_modify(store, in_sync_subscription)
    with pytest.raises(AirflowFailException, match="is terminated: a MODIFY workflow needs it active"):
        run_step(unsync, state, store=store, oss=oss_for(store), try_number=1)


def test_set_in_sync_is_refused_while_a_process_is_unfinished(store, in_sync_subscription):
    state = start_modify(store, in_sync_subscription)
    run_step(unsync, state, store=store, oss=oss_for(store), try_number=1)
    with pytest.raises(OutOfSyncError, match=f"process {state['process_id']} \\(modify_user_group, running\\)"), \
            store.transaction() as repo:
        repo.set_in_sync(in_sync_subscription.subscription_id)
    with store.transaction() as repo:
        repo.abort_process(UUID(state["process_id"]), "given up")
    with store.transaction() as repo:
        sub, changed = repo.set_in_sync(in_sync_subscription.subscription_id)
        assert sub.insync is True and changed
    with store.transaction() as repo:  # again: already in sync, nothing changes (no version bump)
        assert repo.set_in_sync(in_sync_subscription.subscription_id) == (sub, False)
