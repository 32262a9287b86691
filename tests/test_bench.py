"""`make bench`'s own code that writes to the store: it seeds as the store's mappings are now (a bench that breaks
is found here, not after its first eight minutes)."""

import sys

import pytest

from helpers import ROOT


@pytest.mark.parametrize("store_target", ["postgres"], indirect=True)
def test_the_bench_fills_the_store_with_subscriptions_the_store_reads(store, store_target):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench import fill_store

    from usergroup.settings import settings

    fill_store(store_target.url, store_target.db_schema, str(settings().default_customer_id), 25)
    with store.transaction() as repo:
        subs = repo.list_subscriptions()
    assert len(subs) == 25 and all(s.status == "active" and s.user_group.group_id >= 10_000_000 for s in subs)
