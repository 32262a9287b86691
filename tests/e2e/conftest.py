"""One live stack for the session, shared by the live modules (each starts on it idle, on its own settings, with
an empty store); the stacks under test themselves (`make up`'s, the compose topology) start their own."""

import pytest

from live import empty, live_airflow, own_store


@pytest.fixture(scope="session")
def _shared_store():
    with own_store("ug_live") as pair:
        yield pair


@pytest.fixture(scope="session")
def _shared_live(_shared_store, tmp_path_factory):
    users = {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer"}
    with live_airflow(tmp_path_factory.mktemp("live"), _shared_store[0], users) as airflow:
        yield airflow, dict(airflow.env)


@pytest.fixture(scope="module")
def live_store(_shared_live, _shared_store):
    """The shared stack's store, emptied for this module once the stack is idle."""
    live, env = _shared_live
    live.revive()  # a component a test left dead: the runs in flight need it to end
    live.idle()
    live.restore(env)
    empty(_shared_store[1])
    return _shared_store


@pytest.fixture(scope="module")
def live(_shared_live, live_store):
    """The shared live stack (tests/live.py's LiveAirflow), idle and on its own settings when the module starts."""
    return _shared_live[0]


def pytest_collection_modifyitems(items):
    """The shared stack's modules last: the stacks under test run before it starts (it stays up to the end)."""
    items.sort(key=lambda item: "live" in item.fixturenames)
