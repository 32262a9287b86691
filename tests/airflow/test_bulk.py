"""create_user_groups' task bodies, called as Airflow calls them, on both databases: every group a process of its
own, failures per group, a retry or a clear runs only what did not complete, nothing is created twice."""

import json
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from helpers import at_once, counts, create, oss_for
from usergroup.airflow.dags import bulk_dag
from usergroup.engine.process_id import process_id_for
from usergroup.store.repository import Repository
from usergroup.workflows.user_group.create_user_group import create_user_group
from usergroup.workflows.user_group.create_user_groups import create_user_groups

DAG = bulk_dag(create_user_groups)
TASKS = create_user_group.task_ids


def run_of(run_id: str = "bulk", **conf) -> SimpleNamespace:
    return SimpleNamespace(dag_id="create_user_groups", run_id=run_id, run_type="manual",
                           triggering_user_name="admin", conf=conf)


def run_task(task_id: str, run: SimpleNamespace, try_number: int = 1) -> dict:
    ti = SimpleNamespace(map_index=-1, try_number=try_number, hostname="worker")
    params = {"group_names": None, "source": None, **run.conf}
    return DAG.get_task(task_id).python_callable(params=params, dag_run=run, ti=ti)


def run_all(run: SimpleNamespace, try_number: int = 1, tasks: list[str] = TASKS) -> dict[str, str]:
    """Each task in order (a failed one does not stop the next: their trigger rule is all_done): what failed."""
    failed = {}
    for task_id in tasks:
        try:
            run_task(task_id, run, try_number)
        except AirflowFailException as exc:
            failed[task_id] = str(exc)
    return failed


def processes_of(store, run_id: str = "bulk") -> dict[str, dict]:
    with store.transaction() as repo:
        return {p["input_state"]["group_name"]: p for p in repo.list_processes(dag_id="create_user_groups",
                                                                               run_id=run_id)}


def active_names(store) -> list[str]:
    with store.transaction() as repo:
        return sorted(s.user_group.group_name for s in repo.list_subscriptions() if s.status == "active")


def test_two_hundred_groups_with_five_that_fail_each_with_its_reason(store):
    create(store, "Existing A")
    create(store, "existing b")
    names = [f"Group {i:03}" for i in range(195)]
    given = names[:100] + ["GROUP 001", "Existing a", "group 002", "EXISTING B", "Group 0\uff10\uff13"] + names[100:]
    failed = run_all(run_of(group_names=given))
    assert set(failed) == {"create_subscription", "done"}
    assert "5 items failed" in failed["create_subscription"] and "5 of 200 items did not complete" in failed["done"]
    procs = processes_of(store)
    assert len(procs) == 200 and sum(p["status"] == "completed" for p in procs.values()) == 195
    bad = {name: p for name, p in procs.items() if p["status"] != "completed"}
    assert set(bad) == {"GROUP 001", "Existing a", "group 002", "EXISTING B", "Group 0\uff10\uff13"}
    assert {p["status"] for p in bad.values()} == {"failed"}
    assert "given twice in this run: item 101 and item 2 ('Group 001')" in bad["GROUP 001"]["failed_reason"]
    assert "given twice in this run" in bad["Group 0\uff10\uff13"]["failed_reason"]  # a fullwidth look-alike
    assert "is already used by subscription" in bad["Existing a"]["failed_reason"]
    assert all(p["last_step"] == "create_subscription" for p in bad.values())
    assert active_names(store) == sorted(["Existing A", "existing b", *names])
    with store.transaction() as repo:  # each as a single create leaves it: its process, link and seven steps
        for name in ("Group 000", "Group 194"):
            p = procs[name]
            assert p["workflow_name"] == "create_user_group" and p["created_by"] == "manual:admin"
            (sid,) = repo.subscriptions_of(p["process_id"])
            sub = repo.get_subscription(sid)
            assert sub.insync and sub.description == f"User Group {name}" and sub.user_group.group_id
            steps = repo.steps_of(p["process_id"])
            assert [s["task_id"] for s in steps] == TASKS and {s["status"] for s in steps} == {"success"}
            assert steps[-1]["state"]["subscription"]["status"] == "active"
        assert p["process_id"] == process_id_for("create_user_groups", "bulk", "item-200")
    groups = oss_for(store).groups()
    assert len(groups) == 197 and {g["calls"] for g in groups} == {1}


def test_an_ossbss_without_a_batch_call_is_asked_per_group(store, monkeypatch, knobs):
    from usergroup.ossbss.fake import FakeOssBss

    monkeypatch.delattr(FakeOssBss, "provision_user_groups")
    knobs(USERGROUP_FAKE_OSS_REFUSE="^No ")
    failed = run_all(run_of(group_names=["One by one 1", "No thanks", "One by one 2"]))
    assert set(failed) == {"provision_user_group", "done"}
    assert "'No thanks' (at provision_user_group: RefusedByOssBssError" in failed["done"]
    assert active_names(store) == ["One by one 1", "One by one 2"]


def test_the_xcom_is_a_summary_whatever_the_number_of_groups(store):
    run = run_of(group_names=[f"Summary {i}" for i in range(600)])  # more than one chunk
    summaries = [run_task(task_id, run) for task_id in TASKS]
    assert [s["ran"] for s in summaries] == [600] * 7 and summaries[-1]["processes"] == {"completed": 600}
    assert max(len(json.dumps(s)) for s in summaries) < 200


def test_a_clear_after_the_cause_is_fixed_runs_only_what_did_not_complete(store, monkeypatch, knobs):
    knobs(USERGROUP_FAKE_OSS_REFUSE="^Refused")
    run = run_of(group_names=[f"Fine {i}" for i in range(30)] + ["Refused 1", "Refused 2"])
    failed = run_all(run)
    assert set(failed) == {"provision_user_group", "done"} and "Refused 1" in failed["provision_user_group"]
    procs = processes_of(store)
    assert procs["Refused 1"]["status"] == "failed" and "refuses group 'Refused 1'" in procs["Refused 1"][
        "failed_reason"]
    before = counts(store)
    knobs(USERGROUP_FAKE_OSS_REFUSE=None)
    assert run_all(run, try_number=2, tasks=TASKS[3:]) == {}  # the failed task cleared with its downstream tasks
    assert {p["status"] for p in processes_of(store).values()} == {"completed"}
    after = counts(store)
    # Only the two ran again: two steps more for each of the four tasks, nothing else created twice.
    assert after["process_steps"] - before["process_steps"] == 2 * 4
    assert after["subscription_events"] - before["subscription_events"] == 2  # the two that completed now
    grown = ("process_steps", "subscription_events")
    assert {k: v for k, v in after.items() if k not in grown} == {k: v for k, v in before.items() if k not in grown}
    assert {g["calls"] for g in oss_for(store).groups()} == {1}
    assert len(active_names(store)) == 32


class Killed(BaseException):
    """The task's process dies (as a SIGKILL would end it): nothing after this point runs."""


def test_a_crash_after_a_chunk_commit_and_the_retry_create_nothing_twice(store, monkeypatch, knobs):
    knobs(USERGROUP_CHUNK_SIZE="10")
    run = run_of(group_names=[f"Crash {i}" for i in range(35)])
    original, locks = Repository.lock, 0

    def killed_at_the_third_chunk(self, *args, **kwargs):  # two chunks have committed
        nonlocal locks
        locks += 1
        if locks == 3:
            raise Killed
        return original(self, *args, **kwargs)

    for task_id in TASKS:
        locks = 0
        monkeypatch.setattr(Repository, "lock", killed_at_the_third_chunk)
        with pytest.raises(Killed):
            run_task(task_id, run)
        monkeypatch.setattr(Repository, "lock", original)
        run_task(task_id, run, try_number=2)
    procs = processes_of(store)
    assert len(procs) == 35 and {p["status"] for p in procs.values()} == {"completed"}
    assert len(active_names(store)) == 35 and counts(store)["subscriptions"] == 35
    with store.transaction() as repo:
        for p in procs.values():  # each task once in each process, by the try that reached it
            steps = repo.steps_of(p["process_id"])
            assert [s["task_id"] for s in steps] == TASKS and {s["status"] for s in steps} == {"success"}
        tries = {s["try_number"] for p in procs.values() for s in repo.steps_of(p["process_id"])}
    assert tries == {1, 2}
    assert {g["calls"] for g in oss_for(store).groups()} == {1}


def test_overlapping_bulk_runs_at_once_give_each_name_once(store):
    first = [f"Overlap {i}" for i in range(0, 60)]
    second = [f"overlap {i}" for i in range(30, 90)]
    runs = [run_of("one", group_names=first), run_of("two", group_names=second)]
    ended, _ = at_once([lambda run=run: run_all(run) for run in runs])
    assert len(ended) == 2 and any("create_subscription" in failed for failed in ended)
    names = active_names(store)
    assert len(names) == 90 and len({n.lower() for n in names}) == 90
    refused = [p for run in ("one", "two") for p in processes_of(store, run).values() if p["status"] == "failed"]
    assert len(refused) == 30 and all("is being claimed by process" in p["failed_reason"]
                                      or "is already used by" in p["failed_reason"] for p in refused)


def test_a_file_source(store, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_USERGROUP_BULK_SOURCES", f"file://{tmp_path}/")
    (tmp_path / "names.txt").write_text("From file 1\r\nFrom file 2\n\nFrom file 3\n", encoding="utf-8")
    assert run_all(run_of(source=f"file://{tmp_path}/names.txt")) == {}
    assert active_names(store) == ["From file 1", "From file 2", "From file 3"]


@pytest.mark.parametrize(("conf", "error"), [
    ({}, "give either group_names .* or source .*, one of the two"),
    ({"group_names": ["A"], "source": "file:///x"}, "not both"),
    ({"group_names": ["ok", " lead", "a\u200bb"]}, "2 of 3 names break the rules: item 2 .* item 3"),
    ({"group_names": [f"n{i}" for i in range(10_001)]}, "10,001 names given: a run takes 1 to 10,000"),
    ({"source": "file:///etc/passwd"}, "is not in a place bulk runs may read from"),
    ({"source": "file:///tmp/../etc/passwd"}, "is not in a place bulk runs may read from"),
    ({"source": "s3://bucket/names.txt"}, "cannot be read"),
    ({"group_names": ["A"], "extra": 1}, "'extra' not a parameter of create_user_groups"),
])
def test_bad_input_is_refused_before_anything_is_written(store, conf, error):
    before = counts(store)
    with pytest.raises(AirflowFailException, match=f"Invalid input: .*{error}"):
        run_task("create_subscription", run_of(**conf))
    assert counts(store) == before
    for task_id in TASKS[1:]:  # they run (all_done), and fail: the run ends failed, not green
        with pytest.raises(AirflowFailException, match="the run has no items: its first task, create_subscription"):
            run_task(task_id, run_of(**conf))
    assert counts(store) == before


def test_a_name_another_process_claims_is_refused_however_often_the_run_gives_it(store, monkeypatch, knobs):
    knobs(USERGROUP_FAKE_OSS_REFUSE="^Held")
    run_all(run_of("holder", group_names=["Held 5"]))  # failed at provisioning: its process still claims the name
    knobs(USERGROUP_FAKE_OSS_REFUSE=None)
    run_all(run_of("again", group_names=["Held 5", "held 5", "Free 5"]))
    procs = processes_of(store, "again")
    assert "'Held 5' is already used by subscription" in procs["Held 5"]["failed_reason"]
    assert procs["Held 5"]["last_step"] == "create_subscription"
    assert "given twice in this run" in procs["held 5"]["failed_reason"]
    assert procs["Free 5"]["status"] == "completed" and active_names(store) == ["Free 5"]


def test_a_run_stopped_mid_task_leaves_no_process_running(store, monkeypatch, knobs):
    from usergroup.engine.runner import RunStopped

    knobs(USERGROUP_CHUNK_SIZE="10")
    run = run_of(group_names=[f"Stopped {i}" for i in range(30)])
    run_task("create_subscription", run)
    original, locks = Repository.lock, 0

    def stopped_at_the_second_chunk(self, *args, **kwargs):  # one chunk has committed
        nonlocal locks
        locks += 1
        if locks == 2:
            raise RunStopped("the task was stopped by Airflow (SIGTERM) before the step completed")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Repository, "lock", stopped_at_the_second_chunk)
    with pytest.raises(RunStopped):
        run_task("store_process_subscription", run)
    procs = processes_of(store)
    assert {p["status"] for p in procs.values()} == {"failed"}
    assert all(p["failed_reason"].startswith("RunStopped: the task was stopped") for p in procs.values())
    monkeypatch.setattr(Repository, "lock", original)
    assert run_all(run, try_number=2, tasks=TASKS[1:]) == {}  # a clear resumes them all
    assert len(active_names(store)) == 30


def test_a_retry_keeps_each_items_recorded_input_whatever_the_source_says_now(store):
    run_task("create_subscription", run_of(group_names=["Kept 1", "Kept 2"]))
    run_task("create_subscription", run_of(group_names=["Edited 1", "Edited 2"]), try_number=2)
    procs = processes_of(store)
    assert sorted(procs) == ["Kept 1", "Kept 2"]
    with store.transaction() as repo:
        assert all(s["state"]["group_name"].startswith("Kept") for p in procs.values()
                   for s in repo.steps_of(p["process_id"]))


def test_a_link_out_of_the_allowed_folder_is_refused(store, tmp_path, monkeypatch):
    allowed, outside = tmp_path / "bulk", tmp_path / "secret.txt"
    allowed.mkdir()
    outside.write_text("Secret line\n", encoding="utf-8")
    (allowed / "names.txt").symlink_to(outside)
    monkeypatch.setenv("AIRFLOW_VAR_USERGROUP_BULK_SOURCES", f"file://{allowed}/")
    before = counts(store)
    with pytest.raises(AirflowFailException, match="is not in a place bulk runs may read from"):
        run_task("create_subscription", run_of(source=f"file://{allowed}/names.txt"))
    assert counts(store) == before
