"""The OSS/BSS: the client the `usergroup_ossbss` connection names, retry decided by its error classes, and the
fake (provision, rename, remove and read a group, each idempotent; read a user and its membership; drift behind
the store's back; its tables migrated beside the store's)."""

import json
from pathlib import Path
from types import SimpleNamespace
from uuid import UUID, uuid4

import pytest
from airflow.sdk.exceptions import AirflowFailException
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from helpers import create, oss_for
from usergroup.airflow.ossbss_hook import OssBssConnectionError, OssBssHook
from usergroup.airflow.services import services
from usergroup.airflow.tasks import PERMANENT_ERRORS, run_step, step_task
from usergroup.domain import USER_GROUP_PRODUCT, UserGroupInactive
from usergroup.engine.generic_steps import resync
from usergroup.engine.step import StepContext, StepError, step
from usergroup.interfaces.cli.main import main
from usergroup.ossbss import CLIENTS, Connection, StorePlace, UnknownClientError, client_for
from usergroup.ossbss.errors import NotFoundError, OssBssError, PermanentError, RefusedByOssBssError, TransientError
from usergroup.ossbss.fake import HEAD, MIGRATIONS, VERSION_TABLE, FakeOssBss, fake_metadata, fake_ossbss_users
from usergroup.store.connect import mapped_schema
from usergroup.workflows.user_group.create_user_group import (
    create_subscription,
    create_user_group,
    provision_user_group,
)

START = {"workflow_name": "create_user_group", "workflow_target": "CREATE", "dag_id": "create_user_group",
         "run_id": "manual__oss", "created_by": "manual:tester"}


# -- the fake --------------------------------------------------------------------------------------------------


def test_every_call_is_idempotent_and_logged_once(oss):
    sid = uuid4()
    group_id = oss.provision_user_group(sid, "Lab")
    assert oss.provision_user_group(sid, "Lab") == group_id
    assert oss.rename_user_group(sid, "New Lab") is True
    assert oss.rename_user_group(sid, "New Lab") is False  # a retried rename does nothing twice
    assert oss.read_user_group(sid) == {"group_id": group_id, "group_name": "New Lab"}
    assert oss.deprovision_user_group(sid) is True
    assert oss.deprovision_user_group(sid) is False
    assert oss.read_user_group(sid) is None
    assert [(c["action"], c["group_name"]) for c in oss.changes(sid)] == [
        ("provision", "Lab"), ("rename", "New Lab"), ("remove", None)]


def test_drift_changes_or_removes_a_group_behind_the_stores_back(oss):
    sid = uuid4()
    group_id = oss.provision_user_group(sid, "Lab")
    assert oss.drift(sid, group_name="Elsewhere") == {"group_id": group_id, "group_name": "Lab"}
    assert oss.read_user_group(sid)["group_name"] == "Elsewhere"
    oss.drift(sid, remove=True)
    assert oss.read_user_group(sid) is None
    assert [c["action"] for c in oss.changes(sid)] == ["provision", "drift", "drift"]
    with pytest.raises(NotFoundError, match=f"no group for subscription {sid}"):
        oss.drift(sid, remove=True)
    with pytest.raises(ValueError, match="not both"):
        oss.drift(sid, group_name="X", remove=True)


def test_read_user_is_the_user_and_its_membership(oss):
    """Its membership is its group, under the group's name now; a user whose group is gone is in none."""
    lab, other, sid = uuid4(), uuid4(), uuid4()
    lab_id, other_id = oss.provision_user_group(lab, "Lab"), oss.provision_user_group(other, "Other Lab")
    user_id = oss.provision_user(sid, lab_id, "alice", 30)
    assert oss.read_user(sid) == {"user_id": user_id, "username": "alice", "age": 30,
                                  "groups": [{"group_id": lab_id, "group_name": "Lab"}]}
    oss.drift(lab, group_name="Renamed Lab")
    assert oss.read_user(sid)["groups"] == [{"group_id": lab_id, "group_name": "Renamed Lab"}]
    with oss.engine.begin() as conn:  # moved to another group behind the store's back
        conn.execute(fake_ossbss_users.update().where(fake_ossbss_users.c.subscription_id == sid)
                     .values(group_id=other_id))
    assert oss.read_user(sid)["groups"] == [{"group_id": other_id, "group_name": "Other Lab"}]
    oss.drift(other, remove=True)
    assert oss.read_user(sid) == {"user_id": user_id, "username": "alice", "age": 30, "groups": []}
    assert oss.provision_user(uuid4(), lab_id, "bob", None) != user_id
    oss.deprovision_user(sid)
    assert oss.read_user(sid) is None
    assert [c["action"] for c in oss.changes(sid)] == ["provision_user", "remove_user"]  # reading changes nothing


def test_renaming_a_group_it_does_not_hold_is_a_permanent_error(oss):
    with pytest.raises(NotFoundError, match="nothing to rename"):
        oss.rename_user_group(uuid4(), "X")
    assert issubclass(NotFoundError, PermanentError)  # the adapter fails the task at once: no retry cures it


def test_an_unavailable_oss_fails_every_call(oss, knobs):
    knobs(USERGROUP_FAKE_OSS_FAIL="1")
    for call in (lambda: oss.provision_user_group(uuid4(), "X"), lambda: oss.rename_user_group(uuid4(), "X"),
                 lambda: oss.deprovision_user_group(uuid4()), lambda: oss.read_user_group(uuid4()),
                 lambda: oss.read_user(uuid4())):
        with pytest.raises(TransientError, match="unavailable"):
            call()


# -- the fake's tables: migrated, beside the store's --------------------------------------------------------------


def test_head_is_the_last_migration():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD


def test_the_tables_sit_beside_the_store(store, store_target):
    """PostgreSQL: in the store's schema, with a version table of their own. SQLite: in a file of their own beside
    the store's (a fake writing into the store's file would wait for the step's transaction)."""
    oss = oss_for(store)
    assert oss.upgrade() == HEAD  # a second upgrade changes nothing
    ours = {t.name for t in fake_metadata.sorted_tables}
    with store.engine.connect() as conn:
        in_store = set(inspect(conn).get_table_names(schema=mapped_schema(store.engine)))
    if store_target.kind == "sqlite":
        assert not ours & in_store
        sibling = Path(make_url(store_target.url).database).with_name("store-fake-ossbss.db")
        assert oss.engine.url.database == str(sibling)
        engine = create_engine(f"sqlite:///{sibling}")
        with engine.connect() as conn:
            assert ours <= set(inspect(conn).get_table_names())
        engine.dispose()
    else:
        assert ours <= in_store and {"alembic_version", VERSION_TABLE} <= in_store


def test_a_fake_whose_tables_are_not_migrated_says_so(store_target):
    """Nothing creates its tables on first use any more: `usergroup db upgrade` does, and the fake says so."""
    oss = FakeOssBss(make_url(store_target.url), store_target.db_schema)
    with pytest.raises(PermanentError, match="tables are not migrated .*run `usergroup db upgrade`"):
        oss.provision_user_group(uuid4(), "Lab")
    if store_target.kind == "postgres":
        oss._place.dispose()


def test_the_tables_an_earlier_fake_created_itself_are_kept(store_target):
    """Before they were migrated, the fake created its tables on first use: the migration keeps them, and their
    rows."""
    engine = store_target.engine()
    oss = FakeOssBss(make_url(store_target.url), store_target.db_schema)
    sid = uuid4()
    with oss._place.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{store_target.db_schema}"'))
        earlier = ("fake_ossbss_groups", "fake_ossbss_users", "fake_ossbss_changes")  # what it created itself
        fake_metadata.create_all(conn, tables=[t for t in fake_metadata.sorted_tables if t.name in earlier])
        conn.execute(fake_metadata.tables["usergroup.fake_ossbss_groups"].insert().values(
            subscription_id=sid, group_name="Old Lab", calls=1))
    assert oss.upgrade() == HEAD
    assert oss.read_user_group(sid)["group_name"] == "Old Lab"
    engine.dispose()


# -- the connection picks the client ------------------------------------------------------------------------------


def test_provider_hook_attributes(monkeypatch):
    assert OssBssHook.conn_name_attr == "ossbss_conn_id" and OssBssHook.default_conn_name == "usergroup_ossbss"
    assert OssBssHook.conn_type in CLIENTS and OssBssHook.hook_name
    assert OssBssHook(ossbss_conn_id="other").ossbss_conn_id == "other"

    def boom(*a, **k):
        raise AssertionError("__init__ must not look up the connection")

    monkeypatch.setattr(OssBssHook, "get_connection", classmethod(boom))
    OssBssHook()


@pytest.mark.parametrize("conn", ['{"conn_type": "usergroup_fake_ossbss"}', "usergroup-fake-ossbss://"])
def test_the_connection_picks_the_fake(store, store_target, monkeypatch, conn):
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_OSSBSS", conn)
    task_store, oss = services("provision_user_group")
    assert type(oss) is FakeOssBss
    if store_target.kind == "postgres":  # beside the store: on its engine
        assert oss.engine is task_store.engine
    sid = uuid4()
    assert oss.provision_user_group(sid, "Picked Lab") == oss_for(store).read_user_group(sid)["group_id"]


def test_a_missing_connection_fails_the_task_at_once_naming_it(store, monkeypatch):
    """No silent fallback to the fake: a worker without the connection fails, naming it and what to do."""
    monkeypatch.delenv("AIRFLOW_CONN_USERGROUP_OSSBSS")
    with pytest.raises(OssBssConnectionError, match="the Airflow connection 'usergroup_ossbss' is not defined"):
        _ = OssBssHook().client
    body = step_task(resync, create_user_group, task_id="resync").function
    with pytest.raises(AirflowFailException, match="resync: the Airflow connection 'usergroup_ossbss' is not "
                                                   r"defined.*AIRFLOW_CONN_USERGROUP_OSSBSS='\{\"conn_type\": "
                                                   "\"usergroup_fake_ossbss\"}'"):
        body({"process_id": "x"}, params={}, dag_run=SimpleNamespace(dag_id="d", run_id="r"),
             ti=SimpleNamespace(try_number=1, map_index=-1))


@pytest.mark.parametrize("conn", ['{"conn_type": "http", "host": "oss.example"}', '{"conn_type": "sqlite"}'])
def test_an_unknown_conn_type_fails_the_task_at_once_naming_it(store, monkeypatch, conn):
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_OSSBSS", conn)
    conn_type = json.loads(conn)["conn_type"]
    with pytest.raises(AirflowFailException, match=f"provision_user_group: the Airflow connection 'usergroup_ossbss' "
                                                   f"has conn type '{conn_type}', which names no OSS/BSS client: "
                                                   "give it one of usergroup_fake_ossbss"):
        services("provision_user_group")
    with pytest.raises(UnknownClientError, match=f"'{conn_type}', which names no OSS/BSS client"):
        client_for(Connection("usergroup_ossbss", conn_type), StorePlace(make_url("sqlite:///x.db"), "usergroup"))


# -- retry decided by our classes ----------------------------------------------------------------------------------


def _failing(exc: BaseException):
    @step("Call the OSS/BSS")
    def call_the_ossbss(subscription_id: UUID, ctx: StepContext) -> dict:
        raise exc

    return call_the_ossbss


def _opened(store) -> dict:
    state = {"process_id": str(uuid4()), "workflow_name": "create_user_group", "workflow_target": "CREATE",
             "product_id": str(USER_GROUP_PRODUCT.product_id), "customer_id": str(uuid4()), "group_name": "Retry Lab"}
    return run_step(create_subscription, state, store=store, oss=oss_for(store), try_number=1,
                    start={**START, "run_id": state["process_id"]})


@pytest.mark.parametrize("exc", [TransientError("the OSS/BSS timed out"), OssBssError("unclassified"),
                                 KeyError("group_id"), TypeError("a bug"), ValueError("a bug")])
def test_a_transient_error_is_raised_as_it_is_for_airflow_to_retry(store, exc):
    """Not ours to call permanent (a transient OSS/BSS error, or a builtin one): Airflow retries the task."""
    assert not isinstance(exc, PERMANENT_ERRORS)
    state = _opened(store)
    with pytest.raises(type(exc)) as raised:
        run_step(_failing(exc), state, store=store, oss=oss_for(store), try_number=1)
    assert raised.value is exc
    with store.transaction() as repo:
        process = repo.get_process(state["process_id"])
    assert process["status"] == "failed" and process["failed_reason"].startswith(type(exc).__name__)


@pytest.mark.parametrize("exc", [PermanentError("no such tenant"), NotFoundError("no group"),
                                 RefusedByOssBssError("refused name")])
def test_a_permanent_error_fails_the_task_at_once(store, exc):
    state = _opened(store)
    with pytest.raises(AirflowFailException, match=f"call_the_ossbss: {exc}"):
        run_step(_failing(exc), state, store=store, oss=oss_for(store), try_number=1)
    with store.transaction() as repo:
        assert repo.get_process(state["process_id"])["status"] == "failed"


def test_the_fault_switches_in_its_table_take_effect_at_the_next_call(oss, knobs):
    """What `usergroup ossbss faults` sets: no restart, no environment; the environment's switches add to them."""
    sid = uuid4()
    assert oss.set_faults(fail=True) == {"fail": True, "delay": 0.0, "refuse": None}
    for call in (lambda: oss.provision_user_group(sid, "Lab"), lambda: oss.provision_user_groups({sid: "Lab"}),
                 lambda: oss.read_user_group(sid), lambda: oss.provision_user(sid, 1, "u", None)):
        with pytest.raises(TransientError, match=r"unavailable \(its fail switch is on\)"):
            call()
    assert oss.groups() == []
    assert oss.set_faults(fail=False, refuse="^No ") == {"fail": False, "delay": 0.0, "refuse": "^No "}
    with pytest.raises(RefusedByOssBssError, match=r"refuses group 'No Lab' \(it matches its refuse switch\)"):
        oss.provision_user_group(sid, "No Lab")
    assert isinstance(oss.provision_user_groups({sid: "No Lab"})[sid], RefusedByOssBssError)
    knobs(USERGROUP_FAKE_OSS_REFUSE="^Env ")
    with pytest.raises(RefusedByOssBssError, match="it matches USERGROUP_FAKE_OSS_REFUSE"):
        oss.provision_user_group(sid, "Env Lab")
    assert oss.set_faults(delay=0.25) == {"fail": False, "delay": 0.25, "refuse": "^No "}  # the others kept
    knobs(USERGROUP_FAKE_OSS_DELAY="0.5", USERGROUP_FAKE_OSS_REFUSE=None)
    assert oss.faults().delay == 0.5  # the longer one
    assert oss.set_faults(no_refuse=True, delay=0) == {"fail": False, "delay": 0.0, "refuse": None}
    knobs(USERGROUP_FAKE_OSS_DELAY=None, USERGROUP_FAKE_OSS_FAIL="1")
    with pytest.raises(TransientError, match=r"unavailable \(USERGROUP_FAKE_OSS_FAIL is set\)"):
        oss.provision_user_group(sid, "Lab")
    knobs(USERGROUP_FAKE_OSS_FAIL=None)
    assert oss.provision_user_group(sid, "No Lab") == oss.read_user_group(sid)["group_id"]


@pytest.mark.parametrize(("bad", "error"), [
    ({"delay": -1}, "delay: -1 is not a number of seconds from 0 to 30"),
    ({"delay": float("nan")}, "delay: nan is not"), ({"delay": 31}, "delay: 31 is not"),
    ({"refuse": "a{99999999999}"}, "is not a regular expression: the repetition number is too large"),
    ({"refuse": "(a+)+$"}, "repeats a repeated pattern"), ({"refuse": "^(x|x?)*y"}, "repeats a repeated pattern"),
    ({"refuse": "("}, "refuse: '\\(' is not a regular expression"),
    ({"refuse": "x" * 256}, "refuse: a pattern of 1 to 255 characters, not 256"),
    ({"refuse": ""}, "refuse: a pattern of 1 to 255 characters, not 0 [(]--no-refuse: none[)]"),
])
def test_a_bad_fault_switch_is_refused_before_anything_is_written(oss, bad, error):
    oss.set_faults(fail=True)
    with pytest.raises(ValueError, match=error):
        oss.set_faults(fail=False, **bad)
    assert oss.faults().fail is True and oss.faults().delay == 0


def test_two_callers_setting_switches_at_once_lose_neither(oss):
    from concurrent.futures import ThreadPoolExecutor

    calls = [{"fail": True}, {"delay": 2}, {"refuse": "^X"}] * 5
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda kw: oss.set_faults(**kw), calls))
    assert oss.set_faults() == {"fail": True, "delay": 2.0, "refuse": "^X"}
    oss.set_faults(fail=False, delay=0, no_refuse=True)


def test_the_fakes_errors_through_a_real_step(store, knobs):
    """Unavailable (USERGROUP_FAKE_OSS_FAIL) is retried; a refused name (USERGROUP_FAKE_OSS_REFUSE) fails at once;
    a step given a subscription in the wrong lifecycle fails at once (a StepError, not a builtin TypeError)."""
    state = create(store, "Refused Lab", upto=3)
    knobs(USERGROUP_FAKE_OSS_FAIL="1")
    with pytest.raises(TransientError, match="unavailable"):
        run_step(provision_user_group, state, store=store, oss=oss_for(store), try_number=1)
    knobs(USERGROUP_FAKE_OSS_FAIL=None, USERGROUP_FAKE_OSS_REFUSE="^Refused")
    with pytest.raises(AirflowFailException, match="the OSS/BSS refuses group 'Refused Lab'"):
        run_step(provision_user_group, state, store=store, oss=oss_for(store), try_number=2)
    sub = UserGroupInactive.from_product_id(USER_GROUP_PRODUCT.product_id, uuid4())
    with pytest.raises(AirflowFailException, match="subscription is UserGroupInactive, the step needs"):
        run_step(provision_user_group, {**state, "subscription": sub.model_dump(mode="json")}, store=store,
                 oss=oss_for(store), try_number=3)
    assert StepError in PERMANENT_ERRORS


# -- the command ---------------------------------------------------------------------------------------------------


def test_db_upgrade_migrates_the_fakes_tables_too(store_target, monkeypatch, capsys):
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_DEFAULT", store_target.conn_json)
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_OSSBSS", '{"conn_type": "usergroup_fake_ossbss"}')
    assert main(["db", "upgrade"]) == 0
    assert ("OSS/BSS usergroup_fake_ossbss (connection usergroup_ossbss): its tables are at revision "
            f"{HEAD}") in capsys.readouterr().out
    oss = FakeOssBss(make_url(store_target.url), store_target.db_schema)
    assert oss.groups() == []
    if store_target.kind == "postgres":
        oss._place.dispose()


def test_db_upgrade_without_the_connection_says_so(store_target, monkeypatch, capsys):
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_DEFAULT", store_target.conn_json)
    monkeypatch.delenv("AIRFLOW_CONN_USERGROUP_OSSBSS", raising=False)
    assert main(["db", "upgrade"]) == 1
    out = capsys.readouterr()
    assert "is at revision" in out.out  # the store is upgraded all the same
    assert "the Airflow connection 'usergroup_ossbss' is not defined" in out.err


def test_ossbss_commands_on_a_client_that_does_not_offer_them(store, monkeypatch, capsys):
    monkeypatch.setitem(CLIENTS, "test_plain_ossbss", lambda connection, place: SimpleNamespace())
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_OSSBSS", '{"conn_type": "test_plain_ossbss"}')
    assert main(["ossbss", "list"]) == 1
    assert ("the OSS/BSS client of the connection 'usergroup_ossbss' (conn type 'test_plain_ossbss') offers no "
            "groups(): `usergroup ossbss list` works on a client that does") in capsys.readouterr().err
    assert main(["ossbss", "drift", str(uuid4()), "--remove"]) == 1
    assert "offers no drift(): `usergroup ossbss drift`" in capsys.readouterr().err
    assert main(["db", "upgrade"]) == 0  # a client without tables of its own: only the store is upgraded
    assert "OSS/BSS" not in capsys.readouterr().out
