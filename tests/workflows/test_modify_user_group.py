"""modify_user_group on the store: a rename in the store and the OSS/BSS, a change of case, a name held by another
group, every refusal (writing nothing); races between modifies, a terminate and a create."""

from uuid import uuid4

import pytest
from airflow.sdk.exceptions import AirflowFailException

from helpers import CUSTOMER, at_once, counts, create, create_user, oss_for, run_on, run_tasks, start_state
from usergroup.workflows.user_group.modify_user_group import modify_user_group
from usergroup.workflows.user_group.terminate_user_group import terminate_user_group


def modify(store, subscription_id: str, group_name: str, version: int | None = None, **kw) -> dict:
    return run_on(store, modify_user_group, subscription_id, group_name=group_name, version=version, **kw)


def group_of(store, subscription_id) -> dict | None:
    return oss_for(store).read_user_group(subscription_id)


def test_a_rename_reaches_the_oss_and_the_subscription(store):
    created = create(store, "Alpha Lab")
    sid = created["subscription_id"]
    done = modify(store, sid, "Beta Lab", version=created["subscription"]["version"])
    assert done["customer_id"] == CUSTOMER and done["previous_group_name"] == "Alpha Lab"
    with store.transaction() as repo:
        sub = repo.get_subscription(sid)
        assert (sub.status, sub.insync, sub.user_group.group_name, sub.description) == (
            "active", True, "Beta Lab", "User Group Beta Lab")
        assert repo.get_process(done["process_id"])["status"] == "completed"
        assert [s["task_id"] for s in repo.steps_of(done["process_id"])] == modify_user_group.task_ids
        assert [p["workflow_target"] for p in repo.processes_of(sid)] == ["CREATE", "MODIFY"]
    assert group_of(store, sid) == {"group_id": sub.user_group.group_id, "group_name": "Beta Lab"}
    assert [c["action"] for c in oss_for(store).changes(sid)] == ["provision", "rename"]
    create(store, "Alpha Lab")  # the old name is free


@pytest.mark.parametrize("new_name", ["ALPHA lab", "Alpha Lab"])
def test_its_own_name_in_another_case_or_unchanged_is_allowed(store, new_name):
    sid = create(store, "Alpha Lab")["subscription_id"]
    modify(store, sid, new_name)
    with store.transaction() as repo:
        assert repo.get_subscription(sid).user_group.group_name == new_name
    renames = [c for c in oss_for(store).changes(sid) if c["action"] == "rename"]
    assert len(renames) == (new_name != "Alpha Lab")


def test_refusals_write_nothing(store):
    active = create(store, "Kept Lab")
    create(store, "Taken Lab")
    create(store, "Being Made", upto=1)  # a create that has claimed its name and goes on
    in_flight = create(store, "Busy Lab", upto=3)  # its create is still running
    gone = create(store, "Gone Lab")
    run_on(store, terminate_user_group, gone["subscription_id"])
    held = create(store, "Held Lab")
    holder = modify(store, held["subscription_id"], "Held Lab 2", upto=2)  # past its unsync
    other = _other_product_subscription(store)
    before, groups = counts(store), oss_for(store).groups()
    cases = [
        (str(uuid4()), "X", None, "no subscription"),
        (other, "X", None, f"subscription {other} is a User internal, not a User Group: modify_user_group cannot run "
                           "on it"),
        (gone["subscription_id"], "X", None, "is terminated: it cannot be modified"),
        (in_flight["subscription_id"], "X", None, "is provisioning: it cannot be modified"),
        (held["subscription_id"], "X", None, f"is out of sync; held by process {holder['process_id']} "
                                             r"\(modify_user_group, running\)"),
        (active["subscription_id"], "X", 99, "stale data: given version 99 does not match the current version 5"),
        (active["subscription_id"], "taken LAB", None, "'taken LAB' is already used by subscription"),
        (active["subscription_id"], "being made", None, "'being made' is being claimed by process"),
    ]
    for subscription_id, name, version, message in cases:
        with pytest.raises(AirflowFailException, match=message):
            modify(store, subscription_id, name, version)
    assert counts(store) == before and oss_for(store).groups() == groups


def _other_product_subscription(store) -> str:
    """A subscription of another product: a User (in a group of its own)."""
    return create_user(store, create(store, "Other Product")["subscription_id"], "someone")["subscription_id"]


def test_twenty_renames_of_one_group_at_once_exactly_one_completes(store):
    """Twenty runs, each past its first task (the subscription was in sync for all), race at `unsync`."""
    sid = create(store, "Race Lab")["subscription_id"]
    names = [f"Race Lab {i}" for i in range(20)]
    started = [modify(store, sid, n, upto=1, run_id=f"race-{i}") for i, n in enumerate(names)]
    won, lost = at_once([lambda s=s, i=i: run_tasks(store, modify_user_group, s, after=1, run_id=f"race-{i}")
                         for i, s in enumerate(started)])
    assert len(won) == 1 and len(lost) == 19, lost
    winner = won[0]["process_id"]
    # Refused at `unsync`, naming the winner: it holds the subscription, or it changed it since they checked it.
    assert all(m.startswith("unsync: ") and f"by process {winner}" in m for m in lost), lost
    with store.transaction() as repo:
        sub = repo.get_subscription(sid)
        assert sub.insync and sub.user_group.group_name in names and sub.user_group.group_name == won[0]["group_name"]
        statuses = [p["status"] for p in repo.list_processes() if p["workflow_name"] == "modify_user_group"]
    assert sorted(statuses) == ["aborted"] * 19 + ["completed"]  # the losers will not go on
    assert group_of(store, sid)["group_name"] == sub.user_group.group_name
    assert len([c for c in oss_for(store).changes(sid) if c["action"] == "rename"]) == 1


def test_a_modify_and_a_terminate_at_once_exactly_one_wins(store):
    for _ in range(3):
        sid = create(store, f"Contest {uuid4().hex[:6]}")["subscription_id"]
        m, t = f"m-{sid}", f"t-{sid}"
        first = [modify(store, sid, f"Renamed {uuid4().hex[:6]}", upto=1, run_id=m),
                 run_on(store, terminate_user_group, sid, upto=1, run_id=t)]
        won, lost = at_once([lambda s=first[0], m=m: run_tasks(store, modify_user_group, s, after=1, run_id=m),
                             lambda s=first[1], t=t: run_tasks(store, terminate_user_group, s, after=1, run_id=t)])
        assert len(won) == 1 and len(lost) == 1, lost
        with store.transaction() as repo:
            sub = repo.get_subscription(sid)
        if won[0]["workflow_name"] == "terminate_user_group":
            assert sub.status == "terminated" and group_of(store, sid) is None
        else:
            assert sub.status == "active" and group_of(store, sid)["group_name"] == sub.user_group.group_name
        assert sub.insync


def test_a_create_and_a_rename_to_its_name_at_once_exactly_one_holds_it(store):
    for i in range(3):
        sid = create(store, f"Old Name {i}")["subscription_id"]
        wanted = f"Wanted Name {i}"
        won, lost = at_once([lambda sid=sid, name=wanted: modify(store, sid, name),
                             lambda name=wanted: create(store, name.upper())])
        assert len(won) == 1 and len(lost) == 1, lost
        with store.transaction() as repo:
            holders = [s for s in repo.list_subscriptions()
                       if (s.user_group.group_name or "").casefold() == wanted.casefold()]
        assert len(holders) == 1 and holders[0].status == "active"
        in_oss = [g for g in oss_for(store).groups() if g["group_name"].casefold() == wanted.casefold()]
        assert len(in_oss) == 1 and in_oss[0]["subscription_id"] == holders[0].subscription_id


def test_a_retry_refused_at_the_first_task_ends_the_process_its_first_try_opened(store, monkeypatch):
    """Try 1 passed the checks and failed on the store (its process recorded `failed`, claiming the name); the
    subscription is terminated meanwhile; try 2 is refused: the process is aborted and the name is free."""
    from sqlalchemy.exc import OperationalError

    from usergroup.airflow.tasks import StoreUnavailableError, run_step
    from usergroup.store.repository import Repository

    sid = create(store, "Retry Lab")["subscription_id"]
    state = start_state(modify_user_group, "retry", subscription_id=sid, version=None, group_name="Xray")
    real = Repository.link

    def drop_once(self, *a):
        monkeypatch.setattr(Repository, "link", real)
        raise OperationalError("link", {}, Exception("server closed the connection"))

    monkeypatch.setattr(Repository, "link", drop_once)
    start = {"workflow_name": "modify_user_group", "workflow_target": "MODIFY", "dag_id": "modify_user_group",
             "run_id": "retry", "created_by": "test"}
    first = modify_user_group.steps[0]
    with pytest.raises(StoreUnavailableError):
        run_step(first, state, store=store, oss=oss_for(store), try_number=1, start=start,
                 checks=modify_user_group.checks, task_id="store_process_subscription")
    with store.transaction() as repo:
        assert repo.get_process(state["process_id"])["status"] == "failed"
    run_on(store, terminate_user_group, sid)
    with pytest.raises(AirflowFailException, match="is terminated: it cannot be modified"):
        run_step(first, state, store=store, oss=oss_for(store), try_number=2, start=start,
                 checks=modify_user_group.checks, task_id="store_process_subscription")
    with store.transaction() as repo:
        process = repo.get_process(state["process_id"])
    assert process["status"] == "aborted" and "is terminated" in process["failed_reason"]
    create(store, "XRAY")  # the name is free
