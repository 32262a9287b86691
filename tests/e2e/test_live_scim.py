"""A live Airflow against a real SCIM server that goes away mid-run: a create resumed once it is back, and a bulk
run whose server is killed in the middle of its Bulk requests; nothing is created twice."""

import signal
import time

import pytest

from e2e.test_live import restart_scheduler, subscription_of, trigger, usergroup_cli
from scim import read, scim_server

pytestmark = [pytest.mark.live, pytest.mark.xdist_group("live")]


@pytest.fixture
def server(live, tmp_path):
    server = scim_server(tmp_path)
    yield server
    server.stop()
    restart_scheduler(live)  # back on the fake


def test_a_create_while_the_scim_server_is_down_fails_then_resumes_once_it_is_back(live, live_store, server):
    store = live_store[1]
    restart_scheduler(live, AIRFLOW_CONN_USERGROUP_OSSBSS=server.connection(), USERGROUP_OSSBSS_RETRIES="0")
    server.stop()
    run_id = trigger(live, "Away Lab")
    assert live.wait_run(run_id, timeout=120) == "failed"
    process, sub, _ = subscription_of(store, run_id)
    assert process["status"] == "failed" and process["last_step"] == "provision_user_group"
    assert f"SCIM server {server.url} did not answer GET /Groups: ConnectError" in process["failed_reason"]
    server.start()
    resumed = usergroup_cli(live, "processes", "resume", str(process["process_id"]))
    assert resumed.returncode == 0, resumed.stderr
    assert live.wait_run(run_id, timeout=120) == "success"
    process, sub, _ = subscription_of(store, run_id)
    assert process["status"] == "completed" and sub.status == "active" and sub.insync
    [group] = read(server, "Groups", sub.subscription_id)
    assert (group["id"], group["displayName"]) == (sub.user_group.group_id, "Away Lab")
    assert len(read(server, "Groups")) == 1


def test_a_bulk_run_whose_scim_server_is_killed_mid_bulk_completes_on_its_retry(live, live_store, server):
    store = live_store[1]
    restart_scheduler(live, AIRFLOW_CONN_USERGROUP_OSSBSS=server.connection(), USERGROUP_CHUNK_SIZE="25")
    names = [f"Killed bulk {i:03}" for i in range(300)]
    response = live.trigger({"group_names": names}, dag_id="create_user_groups")
    assert response.status_code == 200, response.text
    run_id = response.json()["dag_run_id"]
    deadline = time.monotonic() + 120
    while server.log.read_text().count("POST /v2/Bulk") < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.stop(signal.SIGKILL)  # in the middle of the chunks' Bulk requests
    states = {}
    while states.get("provision_user_group") not in ("up_for_retry", "failed") and time.monotonic() < deadline:
        states = live.task_states(run_id, "create_user_groups")
        time.sleep(0.2)
    assert states["provision_user_group"] == "up_for_retry", states
    server.start()
    assert live.wait_run(run_id, timeout=240, dag_id="create_user_groups") == "success"
    with store.transaction() as repo:
        active = {str(s.subscription_id): s for s in repo.list_subscriptions()
                  if s.status == "active" and s.user_group.group_name in names}
    groups = read(server, "Groups")
    assert len(active) == 300 and len(groups) == 300  # each once: the retry found what the killed try created
    assert {g["externalId"]: g["id"] for g in groups} == {sid: s.user_group.group_id for sid, s in active.items()}
