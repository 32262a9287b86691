"""The store on SQLite and on PostgreSQL: migrations, the repository's operations, its guarantees."""

import re
import unicodedata
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from sqlalchemy import Text, cast, inspect, select, text

from usergroup.domain import USER_GROUP_PRODUCT, ProcessStatus, UserGroupInactive
from usergroup.domain.subscription import PRODUCTS
from usergroup.store import tables
from usergroup.store.connect import check_db_schema
from usergroup.store.errors import DuplicateNameError, ProcessAbortedError, StaleSubscriptionError, StoreError
from usergroup.store.mappings.user_group import user_group_blocks
from usergroup.store.migrate import current_revision, upgrade

CUSTOMER = uuid4()
HEAD = "0010"


def initial(name: str | None = None, customer=CUSTOMER) -> UserGroupInactive:
    sub = UserGroupInactive.from_product_id(USER_GROUP_PRODUCT.product_id, customer)
    sub.user_group.group_name = name
    return sub


def test_migration_is_idempotent_and_matches_the_tables(store, store_target):
    engine = store.engine
    assert upgrade(engine) == HEAD  # a second upgrade is a no-op
    schema = None if store_target.kind == "sqlite" else store_target.db_schema
    with engine.connect() as conn:
        assert current_revision(conn, schema) == HEAD
        insp = inspect(conn)
        assert {t.name for t in tables.metadata.sorted_tables} | {"alembic_version"} <= set(
            insp.get_table_names(schema=schema))
        for table in tables.metadata.sorted_tables:  # the migration builds exactly the tables the code uses
            reflected = {c["name"]: c["nullable"] for c in insp.get_columns(table.name, schema=schema)}
            assert reflected == {c.name: c.nullable for c in table.columns}, table.name
            uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints(table.name, schema=schema)}
            expected = {tuple(c.name for c in u.columns) for u in table.constraints
                        if type(u).__name__ == "UniqueConstraint"}
            assert expected <= uniques, table.name
        steps_uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints("process_steps", schema=schema)}
        assert steps_uniques == {("process_id", "task_id", "map_index", "try_number")}  # not the step's name
        product = conn.execute(text(f"SELECT name, product_type, tag FROM {schema + '.' if schema else ''}products"))
        assert sorted(product.all()) == [("User Group", "UserGroup", "GROUP"), ("User external", "User", "USER"),
                                         ("User internal", "User", "USER")]
    with store.transaction() as repo:  # as the domain declares them, fixed inputs included
        assert repo.products() == PRODUCTS


def test_0002_keys_existing_step_rows_on_their_task(store_target):
    """A store at 0001 with a recorded step: after the upgrade the row names its task (the step's name)."""
    engine = store_target.engine()
    upgrade(engine, "0001")
    pid, t = uuid4(), datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(tables.processes.insert().values(
            process_id=pid, workflow_name="w", workflow_target="CREATE", status="completed", dag_id="d", run_id="r",
            input_state={}, started_at=t, last_modified_at=t))
        conn.exec_driver_sql(
            f"INSERT INTO {'' if store_target.kind == 'sqlite' else store_target.db_schema + '.'}process_steps "
            "(process_id, name, status, try_number, started_at, completed_at) VALUES (?, 'resync', 'success', 1, ?, ?)"
            .replace("?", "%s" if store_target.kind == "postgres" else "?"),
            (pid if store_target.kind == "postgres" else pid.hex, t, t))
    assert upgrade(engine) == HEAD
    with engine.connect() as conn:
        (row,) = conn.execute(tables.process_steps.select()).mappings()
    assert (row["name"], row["task_id"], row["map_index"]) == ("resync", "resync", -1)
    engine.dispose()


def test_0004_lets_a_run_hold_a_process_per_subscription(store_target):
    """A store at 0003 with a process: after the upgrade it is its run's one process (map index -1), and the run
    may hold more (the nightly validation: one per subscription, each naming the instance that opened it)."""
    engine = store_target.engine()
    upgrade(engine, "0003")
    t = datetime.now(UTC)
    row = {"workflow_name": "w", "workflow_target": "VALIDATE", "status": "completed", "dag_id": "d", "run_id": "r",
           "input_state": {}, "started_at": t, "last_modified_at": t}
    with engine.begin() as conn:
        conn.execute(tables.processes.insert().values(process_id=uuid4(), **row))
    assert upgrade(engine) == HEAD
    with engine.begin() as conn:
        assert [r.map_index for r in conn.execute(tables.processes.select())] == [-1]
        conn.execute(tables.processes.insert().values(process_id=uuid4(), map_index=0, **row))
        conn.execute(tables.processes.insert().values(process_id=uuid4(), map_index=0, **row))
        assert len(conn.execute(tables.processes.select().where(tables.processes.c.run_id == "r")).all()) == 3
        schema = None if store_target.kind == "sqlite" else store_target.db_schema
        indexes = {i["name"]: i["column_names"] for i in inspect(conn).get_indexes("processes", schema=schema)}
    assert indexes["ix_processes_dag_run"] == ["dag_id", "run_id"]
    engine.dispose()


def test_0003_keys_names_in_nfc_and_keeps_existing_twins(store_target):
    """At 0002 keys were the case-folded name as typed: NFC and NFD twins could both be held. After 0003 the
    key is NFC: a lone decomposed name gets the composed key; of two existing twins one keeps its old key."""
    engine = store_target.engine()
    upgrade(engine, "0002")
    other = uuid4()
    subs = [(CUSTOMER, "Cafe\u0301"), (other, "Caf\u00e9"), (other, "Cafe\u0301"), (other, "Plain")]
    with engine.begin() as conn:
        for customer, name in subs:
            sub = initial(name, customer)
            conn.execute(tables.subscriptions.insert().values(
                subscription_id=sub.subscription_id, product_id=USER_GROUP_PRODUCT.product_id, customer_id=customer,
                description="d", status="initial", insync=False, version=1))
            conn.execute(user_group_blocks.insert().values(
                subscription_id=sub.subscription_id, group_name=name, customer_id=customer, name_key=name.casefold()))
    assert upgrade(engine) == HEAD
    with engine.connect() as conn:
        keys = sorted((str(r.customer_id), r.name_key) for r in conn.execute(user_group_blocks.select()))
    assert (str(CUSTOMER), "caf\u00e9") in keys  # the lone decomposed name: now the composed key
    assert {k for c, k in keys if c == str(other)} == {"caf\u00e9", "cafe\u0301", "plain"}  # twins kept
    engine.dispose()


def test_0005_keys_names_without_selectors_in_nfkc_and_keeps_existing_twins(store_target):
    """At 0004 keys were NFC with joiners and selectors removed after composing: fullwidth, NBSP and
    selector-split twins could both be held. After 0005 a lone such name gets the folded key; of two existing
    twins one keeps its old key."""
    engine = store_target.engine()
    upgrade(engine, "0004")
    other = uuid4()
    names = [(CUSTOMER, "\uff22ravo"), (other, "Foo Bar"), (other, "Foo\u00a0Bar"), (CUSTOMER, "Cafe\ufe0f\u0301")]
    with engine.begin() as conn:
        for customer, name in names:
            sub = initial(name, customer)
            conn.execute(tables.subscriptions.insert().values(
                subscription_id=sub.subscription_id, product_id=USER_GROUP_PRODUCT.product_id, customer_id=customer,
                description="d", status="initial", insync=False, version=1))
            old_key = re.sub("[\u200d\ufe00-\ufe0f]", "", unicodedata.normalize("NFC", name).casefold())
            conn.execute(user_group_blocks.insert().values(
                subscription_id=sub.subscription_id, group_name=name, customer_id=customer, name_key=old_key))
    assert upgrade(engine) == HEAD
    with engine.connect() as conn:
        keys = sorted((str(r.customer_id), r.name_key) for r in conn.execute(user_group_blocks.select()))
    assert {k for c, k in keys if c == str(CUSTOMER)} == {"bravo", "caf\u00e9"}
    assert {k for c, k in keys if c == str(other)} == {"foo bar", "foo\u00a0bar"}  # twins kept
    engine.dispose()


@pytest.mark.parametrize(("held", "twin"), [
    ("Caf\u00e9", "Cafe\ufe0f\u0301"), ("Bravo", "Bravo\U000e0100"), ("Bravo", "Bra\u180bvo"),
    ("Bravo", "Bra\u034fvo"), ("Bravo", "Bra\u17b4vo"), ("Foo Bar", "Foo\u00a0Bar"), ("Foo Bar", "Foo\u3000bar"),
    ("Bravo", "\uff22\uff52\uff41\uff56\uff4f"),
])
def test_look_alikes_that_differ_by_invisible_or_width_are_one_name(store, held, twin):
    with store.transaction() as repo:
        repo.save_subscription(initial(held))
    with pytest.raises(DuplicateNameError), store.transaction() as repo:
        repo.claim_name("UserGroup", CUSTOMER, twin, uuid4())


def test_nfc_and_nfd_twins_cannot_both_be_claimed(store):
    with store.transaction() as repo:
        held = repo.save_subscription(initial("Caf\u00e9"))
    for twin in ("Cafe\u0301", "CAFE\u0301"):
        with pytest.raises(DuplicateNameError, match=f"already used by subscription {held.subscription_id}"):
            with store.transaction() as repo:
                repo.claim_name("UserGroup", CUSTOMER, twin, uuid4())
        with pytest.raises(DuplicateNameError):
            with store.transaction() as repo:
                repo.save_subscription(initial(twin))


def test_the_schema_is_mapped_deliberately(store, store_target):
    """PostgreSQL: every table, the version table too, in the configured schema and nowhere else.
    SQLite (no schemas): the placeholder maps to the main database of the store's own file."""
    with store.engine.connect() as conn:
        insp = inspect(conn)
        if store_target.kind == "postgres":
            assert {"subscriptions", "alembic_version"} <= set(insp.get_table_names(schema=store_target.db_schema))
            assert "subscriptions" not in insp.get_table_names(schema="public")
        else:
            assert conn.get_execution_options()["schema_translate_map"] == {"usergroup": None}
            assert {"subscriptions", "alembic_version"} <= set(insp.get_table_names())


def test_save_and_load_round_trip_with_version(store):
    sub = initial("Verbatim 'quotes' <b>html</b> 研究")
    with store.transaction() as repo:
        saved = repo.save_subscription(sub)
    assert saved.version == 1
    with store.transaction() as repo:
        loaded = repo.get_subscription(sub.subscription_id)
    assert loaded == saved and type(loaded) is UserGroupInactive
    loaded.description = "changed"
    with store.transaction() as repo:
        assert repo.save_subscription(loaded).version == 2


def test_optimistic_lock_refuses_a_stale_version(store):
    with store.transaction() as repo:
        saved = repo.save_subscription(initial())
    with store.transaction() as repo:
        repo.save_subscription(saved)  # version 1 -> 2
    with pytest.raises(StaleSubscriptionError, match="changed by someone else"), store.transaction() as repo:
        repo.save_subscription(saved)  # still says version 1
    with pytest.raises(StaleSubscriptionError, match="already exists"), store.transaction() as repo:
        repo.save_subscription(saved.model_copy(update={"version": 0}))


def test_duplicate_names_are_refused_without_case_and_only_per_customer(store):
    with store.transaction() as repo:
        first = repo.save_subscription(initial("Research Lab"))
        repo.save_subscription(initial("Research Lab", customer=uuid4()))  # another customer: fine
    with pytest.raises(DuplicateNameError, match=str(first.subscription_id)), store.transaction() as repo:
        repo.save_subscription(initial("research LAB"))
    with store.transaction() as repo:
        assert repo.find_by_name("UserGroup", CUSTOMER, "RESEARCH lab").subscription_id == first.subscription_id
        assert repo.count(tables.subscriptions) == 2  # the refused one left nothing behind


def test_a_terminated_subscription_frees_its_name(store):
    with store.transaction() as repo:
        sub = repo.save_subscription(initial("Reusable"))
    sub = UserGroupInactive.from_other_lifecycle(sub, "terminated")
    with store.transaction() as repo:
        repo.save_subscription(sub)
        repo.save_subscription(initial("reusable"))
        assert repo.find_by_name("UserGroup", CUSTOMER, "Reusable").status == "initial"


def test_a_failed_transaction_writes_nothing(store):
    with pytest.raises(RuntimeError), store.transaction() as repo:
        repo.save_subscription(initial("Half"))
        raise RuntimeError("crash inside the unit of work")
    with store.transaction() as repo:
        assert repo.count(tables.subscriptions) == 0
        assert repo.count(user_group_blocks) == 0


def test_process_trail_is_idempotent(store):
    pid = uuid4()
    start = dict(workflow_name="create_user_group", workflow_target="CREATE", dag_id="d", run_id="r",
                 created_by="manual:tester", input_state={"group_name": "x"})
    with store.transaction() as repo:
        repo.start_process(pid, **start)
        repo.start_process(pid, **start)
        sub = repo.save_subscription(initial())
        repo.link_subscription(pid, sub.subscription_id, "CREATE")
        repo.link_subscription(pid, sub.subscription_id, "CREATE")
        t = datetime.now(UTC)
        repo.record_step(pid, "a", task_id="a", status="failed", try_number=1, state=None, error="boom", started_at=t)
        repo.record_step(pid, "a", task_id="a", status="success", try_number=2, state={"k": 1}, error=None,
                         started_at=t)
        repo.record_step(pid, "a", task_id="a", status="success", try_number=2, state={"k": 2}, error=None,
                         started_at=t)
        repo.enter_step(pid, "done")
        repo.complete_process(pid)
    with store.transaction() as repo:
        assert repo.count(tables.processes) == 1
        assert repo.count(tables.processes_subscriptions) == 1
        assert [(s["try_number"], s["status"]) for s in repo.steps_of(pid)] == [(1, "failed"), (2, "success")]
        assert repo.completed_step(pid, "a") == {"try_number": 2, "state": {"k": 2}}
        assert repo.completed_step(pid, "a", map_index=0) is None  # a mapped instance is a task of its own
        (process,) = repo.processes_of(sub.subscription_id)
        assert process["status"] == "completed" and process["created_by"] == "manual:tester"
        assert process["started_at"].tzinfo is not None


def test_completed_only_follows_running_and_aborted_is_final(store):
    pid = uuid4()
    with store.transaction() as repo:
        repo.start_process(pid, workflow_name="w", workflow_target="CREATE", dag_id="d", run_id="r2",
                           created_by=None, input_state={})
    with pytest.raises(StoreError, match=f"process {pid} is created: only a running process can complete"):
        with store.transaction() as repo:
            repo.complete_process(pid)
    with store.transaction() as repo:
        repo.enter_step(pid, "first")
        repo.abort_process(pid, "given up")
    with pytest.raises(StoreError, match="is aborted: only a running process can complete"):
        with store.transaction() as repo:
            repo.complete_process(pid)
    with pytest.raises(ProcessAbortedError, match=f"process {pid} was aborted \\(given up\\)"):
        with store.transaction() as repo:
            repo.enter_step(pid, "second")
    with store.transaction() as repo:
        repo.fail_process(pid, ProcessStatus.FAILED, last_step="second", failed_reason="late failure")
        process = repo.get_process(pid)
    assert (process["status"], process["failed_reason"], process["last_step"]) == ("aborted", "given up", "first")


@pytest.mark.parametrize("bad", ["", "Public", "1abc", "a-b", "a;drop", "x" * 64, None])
def test_db_schema_names_are_checked(bad):
    with pytest.raises(ValueError, match="not a valid schema name"):
        check_db_schema(bad)


def test_0006_keeps_every_subscription_and_process_and_adds_the_user_products(store_target, monkeypatch):
    """A store as the release before the User product left it (0005), with groups in every state and their trail:
    after the upgrade each is read back as it was, the User products exist, and a user can join a group."""
    from helpers import create_user, oss_for, run_on
    from usergroup.store.repository import Store
    from usergroup.workflows.user_group.terminate_user_group import terminate_user_group

    engine = store_target.engine()
    upgrade(engine, "0005")
    t, groups = datetime.now(UTC), {}
    with engine.begin() as conn:
        for i, status in enumerate(["active", "terminated", "provisioning"]):
            sid, pid = uuid4(), uuid4()
            conn.execute(tables.subscriptions.insert().values(
                subscription_id=sid, product_id=USER_GROUP_PRODUCT.product_id, customer_id=CUSTOMER,
                description=f"User Group Old {i}", status=status, insync=status != "provisioning",
                start_date=t, version=4))
            conn.execute(user_group_blocks.insert().values(
                subscription_id=sid, group_name=f"Old {i}", group_id=100 + i, customer_id=CUSTOMER,
                name_key=None if status == "terminated" else f"old {i}"))
            conn.execute(tables.processes.insert().values(
                process_id=pid, workflow_name="create_user_group", workflow_target="CREATE", dag_id="create_user_group",
                run_id=f"old_{i}", status="completed" if status != "provisioning" else "failed", input_state={},
                started_at=t, last_modified_at=t))
            conn.execute(tables.process_steps.insert().values(
                process_id=pid, name="create_subscription", task_id="create_subscription", status="success",
                try_number=1, state={"subscription_id": str(sid)}, started_at=t, completed_at=t))
            conn.execute(tables.processes_subscriptions.insert().values(
                process_id=pid, subscription_id=sid, workflow_target="CREATE", created_at=t))
            groups[status] = (sid, pid)
    assert upgrade(engine) == HEAD
    store = Store(engine)
    oss_for(store).upgrade()  # the fake OSS/BSS's tables, as `usergroup db upgrade` migrates them beside the store
    with store.transaction() as repo:
        assert len(repo.list_subscriptions()) == 3 and len(repo.list_processes()) == 3
        for i, (status, (sid, pid)) in enumerate(groups.items()):
            sub = repo.get_subscription(sid)
            assert (sub.status, sub.version, sub.user_group.group_name, sub.user_group.group_id) == \
                (status, 4, f"Old {i}", 100 + i)
            assert [p["process_id"] for p in repo.processes_of(sid)] == [pid] and len(repo.steps_of(pid)) == 1
        assert {p.name for p in repo.products().values()} == {"User Group", "User internal", "User external"}
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_DEFAULT", store_target.conn_json)
    active = str(groups["active"][0])
    user = create_user(store, active, "newcomer")
    with store.transaction() as repo:
        assert repo.get_subscription(user["subscription_id"]).user.group.group_name == "Old 0"
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="used in other subscriptions"):
        run_on(store, terminate_user_group, active)
    engine.dispose()


def test_a_process_the_api_opened_takes_its_first_tasks_input_and_resumes_from_failed(store):
    """The API opens a process (`created`) with the input it validated; the first task's state (after its checks)
    replaces it while the process is still `created`, never after. Resuming a failed one marks it running."""
    pid = uuid4()
    opening = {"workflow_name": "w", "workflow_target": "MODIFY", "dag_id": "d", "run_id": "r", "created_by": "api"}
    with store.transaction() as repo:
        repo.start_process(pid, input_state={"from": "api"}, **opening)
        repo.start_process(pid, input_state={"from": "first task"}, **opening)
        assert repo.get_process(pid)["input_state"] == {"from": "first task"}
        repo.enter_step(pid, "t")
        repo.start_process(pid, input_state={"from": "a retry"}, **opening)
        assert repo.get_process(pid)["input_state"] == {"from": "first task"}
        repo.resume_process(pid)  # running: nothing to resume
        assert repo.get_process(pid)["status"] == "running"
        repo.fail_process(pid, ProcessStatus.FAILED, last_step="t", failed_reason="boom")
        repo.resume_process(pid)
        assert repo.get_process(pid)["status"] == "running"


def test_a_page_of_subscriptions_is_searched_filtered_sorted_and_counted_in_sql(store):
    """The Subscriptions page's query: every word in description, product, status or id (case ignored, `%` and `_`
    taken literally), the filters, a stable order and the total of all that match."""
    names = ["Lab 50% off", "Lab 5_0", "Physics lab", "Chemistry", "<script>alert(1)</script>"]
    with store.transaction() as repo:
        subs = [repo.save_subscription(initial(name).model_copy(update={"description": f"User Group {name}"}))
                for name in names]
        repo.conn.execute(tables.subscriptions.update().where(
            tables.subscriptions.c.subscription_id == subs[2].subscription_id).values(status="provisioning"))

    def page(**kw):
        with store.transaction() as repo:
            found, total = repo.page_subscriptions(**kw)
        return [s.user_group.group_name for s in found], total

    assert page(sort="description", descending=False)[0] == page(sort="description")[0][::-1]
    assert page(query="LAB")[1] == 3
    assert page(query="50%") == (["Lab 50% off"], 1)
    assert page(query="5_0") == (["Lab 5_0"], 1)
    assert page(query="lab provisioning")[0] == ["Physics lab"]
    assert page(status="provisioning", insync=False)[0] == ["Physics lab"]
    assert page(query="user group", product_id=USER_GROUP_PRODUCT.product_id)[1] == 5
    assert page(query=str(subs[3].subscription_id)[:13].upper())[0] == ["Chemistry"]
    assert page(query="<script>")[0] == ["<script>alert(1)</script>"]
    with store.transaction() as repo:  # a block's value counts, not only the description
        repo.conn.execute(user_group_blocks.update().where(
            user_group_blocks.c.subscription_id == subs[3].subscription_id).values(group_name="Zebra"))
    assert page(query="zebra user")[0] == ["Zebra"]
    first, total = page(sort="description", descending=True, offset=0, limit=2)
    second, _ = page(sort="description", descending=True, offset=2, limit=2)
    assert total == 5 and len(first + second) == 4 and not set(first) & set(second)
    assert page(offset=10, limit=2) == ([], 5)  # past the last page: still the total
    with store.transaction() as repo:
        assert repo.with_failed_process([s.subscription_id for s in subs]) == set()


def test_a_chunk_of_rows_reads_back_as_written_whichever_way_it_was_written(store, store_target, monkeypatch):
    """A bulk chunk's rows go in through a COPY on PostgreSQL (with its own escaping of text and JSON), the same rows
    as multi-row INSERTs on SQLite: they read back the same; a row that exists (the same try recorded again) is
    replaced either way, an existing process is left as it is."""
    from usergroup.store import sql

    monkeypatch.setattr(sql, "COPY_FROM", 100)  # as deployed (the suite's fixture stages from 2 rows)
    stages, original = [], sql.staged

    def staged(conn, table, rows):
        stage = original(conn, table, rows)
        stages.append((table.name, stage is not None))
        return stage

    monkeypatch.setattr(sql, "staged", staged)
    odd = "tab\there, line\nend\r, back\\slash \\N \\t, quote \" ' , \u200b ü 𝔘 \x1f"
    pids = [uuid4() for _ in range(sql.COPY_FROM)]
    started = datetime(2026, 12, 7, 18, 0, 0, 123456, tzinfo=UTC)
    row = {"name": odd, "task_id": "t", "try_number": 1, "status": "success", "error": None, "note": odd,
           "hostname": odd, "started_at": started}
    state = {"text": odd, "nested": {"list": [1, 2.5, None, True, odd]}, "\\key": "\\"}
    opening = [{"process_id": p, "workflow_name": "w", "workflow_target": "CREATE", "dag_id": "d", "run_id": "r",
                "created_by": odd, "input_state": state, "status": ProcessStatus.RUNNING} for p in pids]
    with store.transaction() as repo:
        repo.open_processes(opening)
        repo.record_steps([{**row, "process_id": p, "state": state} for p in pids])
        repo.open_processes([{**o, "created_by": "again"} for o in opening])  # exist: left as they are
    staging = store_target.kind == "postgres"
    assert stages == [("processes", staging), ("process_steps", staging), ("processes", staging)]
    with store.transaction() as repo:
        steps = [s for p in pids for s in repo.steps_of(p)]
        assert len(steps) == sql.COPY_FROM and {s["state"] == state for s in steps} == {True}
        assert {(s["name"], s["note"], s["hostname"], s["error"], s["started_at"], s["map_index"]) for s in steps} == {
            (odd, odd, odd, None, started, -1)}
        assert {(p["created_by"], p["status"], p["input_state"] == state) for p in map(repo.get_process, pids)} == {
            (odd, "running", True)}
        repo.record_steps([{**row, "process_id": p, "state": {"again": True}, "error": "x"} for p in pids])
    with store.transaction() as repo:
        steps = [s for p in pids for s in repo.steps_of(p)]
        assert len(steps) == sql.COPY_FROM and {(s["state"]["again"], s["error"]) for s in steps} == {(True, "x")}
        repo.record_steps([{**row, "process_id": p, "state": None, "try_number": 2} for p in pids])  # staged
        repo.record_steps([{**row, "process_id": pids[0], "state": None, "try_number": 3}])  # one row: an INSERT
        steps = tables.process_steps.c
        stored = repo.conn.execute(select(cast(steps.state, Text), steps.error.is_(None))
                                   .where(steps.try_number > 1).distinct()).all()
    assert stored == [("null", True)]  # None in a JSON column: JSON's null, written either way as SQLAlchemy does
