"""The outbox of subscription events on both databases: recorded once per process, read by process or by run,
marked announced once."""

from datetime import UTC, datetime
from uuid import uuid4

from usergroup.store.events import BATCH


def opened(repo, run: str, n: int) -> list:
    ids = sorted(uuid4() for _ in range(n))
    repo.open_processes([{"process_id": pid, "workflow_name": "create_user_group", "workflow_target": "CREATE",
                          "dag_id": "create_user_groups", "run_id": run, "created_by": "t", "input_state": {}}
                         for pid in ids])
    return ids


def event(pid, version: int = 1) -> dict:
    return {"process_id": pid, "subscription_id": uuid4(), "product_type": "UserGroup",
            "workflow_name": "create_user_group", "workflow_target": "CREATE", "status": "active", "version": version}


def test_an_event_is_recorded_once_and_announced_once(store):
    with store.transaction() as repo:
        ids = opened(repo, "bulk", BATCH + 5)
        repo.record_events([event(pid) for pid in ids])
        repo.record_events([event(ids[0], version=9)])  # recorded before: it stays as it was
        other = opened(repo, "other", 1)
        repo.record_events([event(other[0])])
    with store.transaction() as repo:
        owed = repo.unannounced(run=("create_user_groups", "bulk"))
        assert [e["process_id"] for e in owed] == ids and owed[0]["version"] == 1
        assert owed[0]["completed_at"] <= datetime.now(UTC) and owed[0]["announced_at"] is None
        assert [e["process_id"] for e in repo.unannounced([ids[3], other[0]])] == sorted([ids[3], other[0]])
        assert repo.announce(ids) == BATCH + 5  # in batches
        assert repo.announce(ids) == 0
        assert repo.unannounced(run=("create_user_groups", "bulk")) == []
        assert [e["process_id"] for e in repo.unannounced(run=("create_user_groups", "other"))] == other
