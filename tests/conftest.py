"""Shared fixtures: an isolated Airflow home, and a fresh store on SQLite and on PostgreSQL."""

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from helpers import FAKE_OSSBSS_CONN, PG_URL_ENV, ROOT, StoreTarget, oss_for, pg_url

# Before anything imports Airflow: a private Airflow home with our DAGs and plugins, no examples.
_HOME = Path(tempfile.mkdtemp(prefix="usergroup-test-airflow-"))
os.environ.update({
    "AIRFLOW_HOME": str(_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "PYTHONWARNINGS": "ignore::UserWarning",
})
os.environ.pop("AIRFLOW_CONN_USERGROUP_DEFAULT", None)
os.environ.pop("AIRFLOW_CONN_USERGROUP_OSSBSS", None)
for _knob in [k for k in os.environ if k.startswith("USERGROUP_") and k != PG_URL_ENV]:  # the defaults, not the shell's
    os.environ.pop(_knob)


def pytest_sessionfinish(session, exitstatus):
    subprocess.run(["rm", "-rf", str(_HOME)], check=False)


@pytest.fixture(autouse=True)
def _settings_of_this_test():
    """Settings are read once per process: each test reads them anew (and `knobs` sets them)."""
    from usergroup.settings import settings

    settings.cache_clear()
    yield
    settings.cache_clear()


@pytest.fixture
def knobs(monkeypatch):
    """Set `USERGROUP_*` environment variables (None: unset) as a new process would read them."""
    from usergroup.settings import settings

    def set_(**env):
        for name, value in env.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        settings.cache_clear()

    return set_


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    return _HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home):
    """Airflow's metadata database (SQLite in the private home), migrated once."""
    result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return airflow_home / "airflow.db"


@pytest.fixture
def dag_test(airflow_db, capfd):
    """`dag.test()` in this process: the run `airflow dags test` makes, without a process of its own (Airflow is
    imported once per worker, not once per run). dag_test(DAG_ID, **conf) -> (the run's state, what it logged).
    tests/dags/test_dags_test.py runs the command itself once per DAG."""
    from airflow.dag_processing.dagbag import DagBag

    def run(dag_id: str, **conf) -> tuple[str, str]:
        dag = DagBag(dag_folder=str(ROOT / "dags" / f"{dag_id}.py")).get_dag(dag_id)
        capfd.readouterr()
        state = dag.test(run_conf=conf).state
        out = capfd.readouterr()
        return state, out.out + out.err

    return run


@pytest.fixture
def run(dag_test):
    """dag_test that must succeed: run(DAG_ID, **conf) -> what it logged."""

    def run_(dag_id: str, **conf) -> str:
        state, out = dag_test(dag_id, **conf)
        assert state == "success", out[-3000:]
        return out

    return run_


@pytest.fixture(params=["sqlite", "postgres"])
def store_target(request, tmp_path):
    """A fresh, empty (not migrated) store on each database; PostgreSQL gets its own schema, dropped after."""
    if request.param == "sqlite":
        yield StoreTarget("sqlite", f"sqlite:///{tmp_path / 'store.db'}", "usergroup")
        return
    url = pg_url()
    if not url:
        pytest.skip(f"{PG_URL_ENV} not set")
    target = StoreTarget("postgres", url.replace("postgresql://", "postgresql+psycopg2://", 1),
                         f"ug_test_{secrets.token_hex(4)}")
    yield target
    from sqlalchemy import create_engine, text

    engine = create_engine(target.url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{target.db_schema}" CASCADE'))
    engine.dispose()


SQLITE_FILES = ("store.db", "store-fake-ossbss.db")  # a SQLite store's file and its fake OSS/BSS's beside it


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite store and its fake OSS/BSS's file, made once per worker (Alembic takes ~0.15 s a store)."""
    import sqlite3

    from usergroup.ossbss.fake import FakeOssBss
    from usergroup.store.migrate import upgrade

    folder = tmp_path_factory.mktemp("store-template")
    target = StoreTarget("sqlite", f"sqlite:///{folder / 'store.db'}", "usergroup")
    engine = target.engine()
    upgrade(engine)
    fake = FakeOssBss(engine.url, "usergroup")
    fake.upgrade()
    fake._place.dispose()
    engine.dispose()
    for name in SQLITE_FILES:  # everything in the file itself, no WAL beside it
        with sqlite3.connect(folder / name) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return folder


@pytest.fixture(scope="session")
def _postgres_template() -> tuple[str, str] | None:
    """A migrated PostgreSQL store schema (its fake OSS/BSS's tables beside it), made once per worker, as the SQL
    `pg_dump` writes for it (restored in ~0.05 s; Alembic takes ~0.15 s) and the template's name in it; None (each
    test migrates its own) where pg_dump is missing or does not take the server."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from usergroup.store.migrate import upgrade
    from usergroup.store.repository import Store

    target = StoreTarget("postgres", pg_url().replace("postgresql://", "postgresql+psycopg2://", 1),
                         f"ug_template_{secrets.token_hex(4)}")
    engine, u = target.engine(), make_url(target.url)
    try:
        upgrade(engine)
        oss_for(Store(engine)).upgrade()
        dump = subprocess.run(["pg_dump", "--schema", target.db_schema, "--inserts", "--no-owner", "--no-privileges",
                               "-h", u.host, "-p", str(u.port or 5432), "-U", u.username, u.database],
                              capture_output=True, text=True, env={**os.environ, "PGPASSWORD": u.password or ""})
    except FileNotFoundError:
        return None
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{target.db_schema}" CASCADE'))
        engine.dispose()
    if dump.returncode != 0:
        return None
    return target.db_schema, "\n".join(line for line in dump.stdout.splitlines() if not line.startswith("\\"))


@pytest.fixture
def store(store_target, monkeypatch, request):
    """A migrated store with the fake OSS/BSS's tables beside it, also reachable as the `usergroup_default`
    Airflow connection; the `usergroup_ossbss` connection names the fake (as `usergroup db upgrade` and `make run`
    have it)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    from usergroup.store.migrate import upgrade
    from usergroup.store.repository import Store

    template = None
    if store_target.kind == "sqlite":  # the files of a store migrated once per worker, copied
        folder = Path(make_url(store_target.url).database).parent
        for name in SQLITE_FILES:
            shutil.copyfile(request.getfixturevalue("_sqlite_template") / name, folder / name)
    elif template := request.getfixturevalue("_postgres_template"):  # dumped once per worker, restored here
        with create_engine(store_target.url, poolclass=NullPool).begin() as conn:
            conn.exec_driver_sql(template[1].replace(template[0], store_target.db_schema))
    engine = store_target.engine()
    store = Store(engine)
    if store_target.kind == "postgres" and template is None:  # no pg_dump: migrated here
        upgrade(engine)
        oss_for(store).upgrade()
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_DEFAULT", store_target.conn_json)
    monkeypatch.setenv("AIRFLOW_CONN_USERGROUP_OSSBSS", FAKE_OSSBSS_CONN)
    # Rows written together go through COPY from 2 (deployed: from 100), so the suite's small runs take that path.
    monkeypatch.setattr("usergroup.store.sql.COPY_FROM", 2)
    yield store
    engine.dispose()


@pytest.fixture
def oss(store):
    return oss_for(store)
