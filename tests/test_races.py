"""Races in the store: runs with one name at once, exactly one claims it; the others write nothing."""

import threading
from uuid import uuid4

from airflow.sdk.exceptions import AirflowFailException

from helpers import oss_for
from usergroup.airflow.tasks import run_step
from usergroup.domain import USER_GROUP_PRODUCT
from usergroup.store import tables
from usergroup.store.errors import DuplicateNameError
from usergroup.workflows.user_group.create_user_group import create_subscription

RUNS = 10


def test_same_name_at_once_exactly_one_claims_it(store):
    customer = str(uuid4())
    barrier = threading.Barrier(RUNS)
    won, lost, other = [], [], []

    def attempt(i):
        state = {"process_id": str(uuid4()), "workflow_name": "create_user_group", "workflow_target": "CREATE",
                 "product_id": str(USER_GROUP_PRODUCT.product_id), "customer_id": customer,
                 "group_name": "Same Name" if i % 2 else "SAME name"}
        start = {"workflow_name": "create_user_group", "workflow_target": "CREATE", "dag_id": "create_user_group",
                 "run_id": f"race_{i}", "created_by": "test"}
        barrier.wait()
        try:
            won.append(run_step(create_subscription, state, store=store, oss=oss_for(store), try_number=1,
                                start=start))
        except AirflowFailException as exc:
            (lost if isinstance(exc.__cause__, DuplicateNameError) else other).append(exc)
        except Exception as exc:  # noqa: BLE001 - asserted empty below
            other.append(exc)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(RUNS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert other == [] and len(won) == 1 and len(lost) == RUNS - 1
    assert all(f"being claimed by process {won[0]['process_id']}" in str(e) for e in lost)
    with store.transaction() as repo:  # the losers wrote nothing: no process, no subscription, no step
        assert repo.count(tables.processes) == 1 and repo.count(tables.subscriptions) == 1
        assert repo.count(tables.process_steps) == 1
