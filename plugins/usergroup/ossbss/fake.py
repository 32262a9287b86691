"""The fake OSS/BSS: it stands in for a real one in tests, demos, `make run` and `make up` (the conn type
`usergroup_fake_ossbss` of the `usergroup_ossbss` connection), keeping its groups, users and a log of their changes in
tables of its own, which `usergroup db upgrade` migrates (migrations/)."""

import re
import time
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import NamedTuple
from uuid import UUID

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    delete,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError, ProgrammingError

from usergroup.ossbss.errors import NotFoundError, PermanentError, RefusedByOssBssError, TransientError
from usergroup.settings import settings
from usergroup.store.connect import create_store_engine, mapped_schema
from usergroup.store.sql import insert_ignore, insert_ignore_many, upsert

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "fake_ossbss_version"  # its own Alembic version table: on PostgreSQL it sits beside the store's
# Seconds: the longest its delay switch makes it answer. The step's store transaction is open while it answers: on
# the embedded SQLite store a longer wait holds every other writer past SQLite's busy timeout.
MAX_DELAY = 30
NESTED_QUANTIFIER = re.compile(r"[*+?}]\)*[*+{]")  # (a+)+, (a|a?)*: matching can take exponential time
SWITCHES_OFF = {"fail": False, "delay": 0.0, "refuse": None}  # its table's switches when it has no row
HEAD = "0002"  # the revision of migrations/ its tables must be at (a test keeps it equal to the scripts' head)

fake_metadata = MetaData(schema="usergroup")
fake_ossbss_groups = Table(
    "fake_ossbss_groups",
    fake_metadata,
    Column("group_id", Integer, primary_key=True, autoincrement=True),
    Column("subscription_id", Uuid, nullable=False, unique=True),
    Column("group_name", String(255), nullable=False),
    Column("calls", Integer, nullable=False),
)
fake_ossbss_users = Table(
    "fake_ossbss_users",
    fake_metadata,
    Column("user_id", Integer, primary_key=True, autoincrement=True),
    Column("subscription_id", Uuid, nullable=False, unique=True),
    Column("group_id", Integer, nullable=False),
    Column("username", String(255), nullable=False),
    Column("age", Integer),
    Column("calls", Integer, nullable=False),
)
# Every change the fake made: what a real OSS/BSS's audit log would show (a retried rename logs nothing twice).
fake_ossbss_changes = Table(
    "fake_ossbss_changes",
    fake_metadata,
    Column("change_id", Integer, primary_key=True, autoincrement=True),
    Column("subscription_id", Uuid, nullable=False),
    # a group's: provision, rename, remove, drift; a user's: provision_user, update_user, remove_user
    Column("action", String(20), nullable=False),
    Column("group_name", String(255)),  # the name the change gave: the group's, or the user's username
    Column("at", DateTime(timezone=True), nullable=False),
)


# Its fault switches, one row (none: all off); a task sees a change at its next call.
fake_ossbss_faults = Table(
    "fake_ossbss_faults",
    fake_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("fail", Boolean, nullable=False),
    Column("delay", Float, nullable=False),
    Column("refuse", String(255)),
)

fake_ossbss_version = Table(VERSION_TABLE, fake_metadata, Column("version_num", String(32), primary_key=True))


class FakeOssBss:
    """Stands in for the OSS/BSS. Like a real one it commits on its own connection, outside the step's
    transaction, and it is idempotent per subscription: asked again, it returns the same group (and counts
    the call). On PostgreSQL its tables sit beside the store's, on SQLite in a file of its own beside the
    store's file (`<store>-fake-ossbss.db`: a fake writing into the store's file would wait for the step's own
    transaction). `upgrade()` migrates them; a fake whose tables are not migrated fails every call (a
    `PermanentError` saying so). Its fault switches (`faults()`), to demonstrate failures: fail makes every call
    fail (a `TransientError`), delay makes it answer that many seconds after it provisioned, refuse makes it
    refuse the group names a pattern matches (a `PermanentError`). They are set in its table (`set_faults`,
    `usergroup ossbss faults`: a running stack's tasks see them at their next call) or in the environment a task
    process starts with (USERGROUP_FAKE_OSS_FAIL=1, USERGROUP_FAKE_OSS_DELAY=S, USERGROUP_FAKE_OSS_REFUSE=REGEX).
    On PostgreSQL it may share the store's `engine` (its own connection from the same pool: no second engine to
    set up in a task)."""

    def __init__(self, url: URL, db_schema: str, engine: Engine | None = None):
        self.url, self.db_schema, self._store_engine = url, db_schema, engine

    @cached_property
    def _place(self) -> Engine:
        """The engine of where its tables are, migrated or not."""
        url = self.url
        if url.get_backend_name() == "sqlite":
            path = Path(url.database)
            return create_store_engine(url.set(database=str(path.with_name(f"{path.stem}-fake-ossbss{path.suffix}"))),
                                       self.db_schema)
        return self._store_engine or create_store_engine(url, self.db_schema)

    @cached_property
    def engine(self) -> Engine:
        """Its engine, once its tables are known to be at the revision this code needs (one query)."""
        engine = self._place
        try:
            with engine.connect() as conn:
                revision = conn.execute(select(fake_ossbss_version.c.version_num)).scalar()
        except (OperationalError, ProgrammingError):
            with engine.connect() as conn:  # a missing table, or the database out of reach (raised: transient)
                if inspect(conn).has_table(VERSION_TABLE, schema=mapped_schema(engine)):
                    raise
            revision = None
        if revision != HEAD:
            raise PermanentError(f"the fake OSS/BSS's tables are not migrated (at revision {revision}, this code needs "
                                 f"{HEAD}): run `usergroup db upgrade`, which upgrades the store and the tables of the "
                                 "OSS/BSS client the usergroup_ossbss connection names")
        return engine

    def upgrade(self, revision: str = "head") -> str:
        """Create or upgrade its tables (beside the store's: in its schema, or in its own SQLite file); the revision
        they are now at. An earlier fake's tables, which it created itself on first use, are kept."""
        from usergroup.store.migrate import upgrade  # Alembic: not imported by a task that only calls the fake

        return upgrade(self._place, revision, migrations=MIGRATIONS, version_table=VERSION_TABLE)

    def provision_user_group(self, subscription_id: UUID, group_name: str) -> int:
        faults = self._answer_or_fail(f"group {group_name!r} not provisioned")
        self._refuse(faults, group_name)
        subscription_id = UUID(str(subscription_id))
        with self.engine.begin() as conn:
            if insert_ignore(conn, fake_ossbss_groups,
                             {"subscription_id": subscription_id, "group_name": group_name, "calls": 0}):
                self._log(conn, subscription_id, "provision", group_name)
            conn.execute(update(fake_ossbss_groups).where(fake_ossbss_groups.c.subscription_id == subscription_id)
                         .values(calls=fake_ossbss_groups.c.calls + 1))
            group_id = self._read(conn, subscription_id)["group_id"]
        time.sleep(faults.delay)
        return group_id

    def provision_user_groups(self, groups: dict[UUID, str]) -> dict[UUID, int | Exception]:
        """The batch call: create (or find) the group of each subscription, in one transaction; per subscription
        (by UUID) its group id, or the refusal of that one."""
        faults = self._answer_or_fail(f"{len(groups)} groups not provisioned")
        answers: dict[UUID, int | Exception] = {}
        rows = []
        for sid, name in groups.items():
            try:
                self._refuse(faults, name)
                rows.append({"subscription_id": UUID(str(sid)), "group_name": name, "calls": 0})
            except RefusedByOssBssError as exc:
                answers[UUID(str(sid))] = exc
        t = fake_ossbss_groups
        with self.engine.begin() as conn:
            for part in _parts(rows):
                ids, names = [r["subscription_id"] for r in part], {r["subscription_id"]: r["group_name"] for r in part}
                if new := insert_ignore_many(conn, t, part, t.c.subscription_id):
                    at = datetime.now(UTC)
                    conn.execute(insert(fake_ossbss_changes), [{"subscription_id": sid, "action": "provision",
                                                                "group_name": names[sid], "at": at} for sid in new])
                conn.execute(update(t).where(t.c.subscription_id.in_(ids)).values(calls=t.c.calls + 1))
                answers.update((r.subscription_id, r.group_id) for r in conn.execute(
                    select(t.c.subscription_id, t.c.group_id).where(t.c.subscription_id.in_(ids))))
        time.sleep(faults.delay)
        return answers

    def rename_user_group(self, subscription_id: UUID, group_name: str) -> bool:
        self._answer_or_fail(f"group of {subscription_id} not renamed to {group_name!r}")
        subscription_id = UUID(str(subscription_id))
        with self.engine.begin() as conn:
            group = self._read(conn, subscription_id, lock=True)
            if group is None:
                raise NotFoundError(f"the OSS/BSS holds no group for subscription {subscription_id}: "
                                         f"nothing to rename to {group_name!r}")
            if group["group_name"] == group_name:
                return False
            conn.execute(update(fake_ossbss_groups).where(fake_ossbss_groups.c.subscription_id == subscription_id)
                         .values(group_name=group_name))
            self._log(conn, subscription_id, "rename", group_name)
        return True

    def deprovision_user_group(self, subscription_id: UUID) -> bool:
        self._answer_or_fail(f"group of {subscription_id} not removed")
        subscription_id = UUID(str(subscription_id))
        with self.engine.begin() as conn:
            removed = conn.execute(delete(fake_ossbss_groups)
                                   .where(fake_ossbss_groups.c.subscription_id == subscription_id)).rowcount == 1
            if removed:
                self._log(conn, subscription_id, "remove", None)
        return removed

    def read_user_group(self, subscription_id: UUID) -> dict | None:
        self._answer_or_fail(f"group of {subscription_id} not read")
        with self.engine.connect() as conn:
            return self._read(conn, UUID(str(subscription_id)))

    def provision_user(self, subscription_id: UUID, group_id: int, username: str, age: int | None,
                       affiliation: str | None = None) -> int:  # it keeps no affiliation
        faults = self._answer_or_fail(f"user {username!r} not provisioned")
        subscription_id = UUID(str(subscription_id))
        users = fake_ossbss_users
        with self.engine.begin() as conn:
            if insert_ignore(conn, users, {"subscription_id": subscription_id, "group_id": group_id,
                                           "username": username, "age": age, "calls": 0}):
                self._log(conn, subscription_id, "provision_user", username)
            conn.execute(update(users).where(users.c.subscription_id == subscription_id)
                         .values(calls=users.c.calls + 1))
            user_id = conn.execute(select(users.c.user_id).where(users.c.subscription_id == subscription_id)).scalar()
        time.sleep(faults.delay)
        return user_id

    def update_user(self, subscription_id: UUID, username: str, age: int | None) -> bool:
        self._answer_or_fail(f"user of {subscription_id} not updated to {username!r}")
        subscription_id = UUID(str(subscription_id))
        users, where = fake_ossbss_users, fake_ossbss_users.c.subscription_id == subscription_id
        with self.engine.begin() as conn:
            user = conn.execute(select(users.c.username, users.c.age).where(where).with_for_update()).first()
            if user is None:
                raise NotFoundError(f"the OSS/BSS holds no user for subscription {subscription_id}")
            if (user.username, user.age) == (username, age):
                return False
            conn.execute(update(users).where(where).values(username=username, age=age))
            self._log(conn, subscription_id, "update_user", username)
        return True

    def deprovision_user(self, subscription_id: UUID) -> bool:
        self._answer_or_fail(f"user of {subscription_id} not removed")
        subscription_id = UUID(str(subscription_id))
        with self.engine.begin() as conn:
            removed = conn.execute(delete(fake_ossbss_users)
                                   .where(fake_ossbss_users.c.subscription_id == subscription_id)).rowcount == 1
            if removed:
                self._log(conn, subscription_id, "remove_user", None)
        return removed

    def read_user(self, subscription_id: UUID) -> dict | None:
        """The user and its membership: its group (none if the group is gone)."""
        self._answer_or_fail(f"user of {subscription_id} not read")
        users, groups = fake_ossbss_users, fake_ossbss_groups
        query = (select(users.c.user_id, users.c.username, users.c.age, groups.c.group_id, groups.c.group_name)
                 .select_from(users.outerjoin(groups, groups.c.group_id == users.c.group_id))
                 .where(users.c.subscription_id == UUID(str(subscription_id))))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        member_of = [] if row.group_id is None else [{"group_id": row.group_id, "group_name": row.group_name}]
        return {"user_id": row.user_id, "username": row.username, "age": row.age, "groups": member_of}

    def users(self) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(fake_ossbss_users))]

    def drift(self, subscription_id: UUID, *, group_name: str | None = None, remove: bool = False) -> dict | None:
        """Change a group behind the store's back (for tests and demos): rename it, or remove it. Returns the
        group as it was; refuses a subscription it holds no group for."""
        subscription_id = UUID(str(subscription_id))
        if (group_name is None) == (not remove):
            raise ValueError("drift: give a new group_name or remove=True, not both")
        with self.engine.begin() as conn:
            group = self._read(conn, subscription_id, lock=True)
            if group is None:
                raise NotFoundError(f"the fake OSS/BSS holds no group for subscription {subscription_id}")
            where = fake_ossbss_groups.c.subscription_id == subscription_id
            conn.execute(delete(fake_ossbss_groups).where(where) if remove
                         else update(fake_ossbss_groups).where(where).values(group_name=group_name))
            self._log(conn, subscription_id, "drift", None if remove else group_name)
        return group

    def groups(self) -> list[dict]:
        """What it holds: one row per group, with how often it was asked to provision it."""
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(fake_ossbss_groups))]

    def changes(self, subscription_id: UUID | None = None) -> list[dict]:
        """Its change log, oldest first (of one subscription, if given)."""
        query = select(fake_ossbss_changes).order_by(fake_ossbss_changes.c.change_id)
        if subscription_id is not None:
            query = query.where(fake_ossbss_changes.c.subscription_id == UUID(str(subscription_id)))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def faults(self) -> "Faults":
        """The fault switches in effect: its table's and the environment's (either one's fail, the longer delay,
        each refuse pattern)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(fake_ossbss_faults).where(fake_ossbss_faults.c.id == 1)).first()
        env = settings()
        refuse = [("USERGROUP_FAKE_OSS_REFUSE", env.fake_oss_refuse)] if env.fake_oss_refuse else []
        if row is None:
            return Faults(env.fake_oss_fail, env.fake_oss_delay, refuse)
        if row.refuse is not None:
            refuse.append(("its refuse switch", re.compile(row.refuse)))
        return Faults(env.fake_oss_fail or row.fail, max(env.fake_oss_delay, row.delay), refuse)

    def set_faults(self, *, fail: bool | None = None, delay: float | None = None, refuse: str | None = None,
                   no_refuse: bool = False) -> dict:
        """Set the switches given (`no_refuse` turns refuse off), each in one statement (two callers at once lose
        neither's), and keep the others; its table's switches after. A bad value is refused before anything is
        written."""
        if delay is not None and not 0 <= delay <= MAX_DELAY:
            raise ValueError(f"delay: {delay!r} is not a number of seconds from 0 to {MAX_DELAY}")
        if refuse is not None:
            if not refuse or len(refuse) > 255:
                raise ValueError(f"refuse: a pattern of 1 to 255 characters, not {len(refuse)} (--no-refuse: none)")
            try:
                re.compile(refuse)
            except (re.error, OverflowError) as exc:
                raise ValueError(f"refuse: {refuse!r} is not a regular expression: {exc}") from None
            if NESTED_QUANTIFIER.search(refuse):
                raise ValueError(f"refuse: {refuse!r} repeats a repeated pattern: matching a name could take "
                                 "longer than the step may (the store waits meanwhile)")
        given = {k: v for k, v in {"fail": fail, "delay": delay, "refuse": refuse}.items() if v is not None}
        if no_refuse:
            given["refuse"] = None
        t = fake_ossbss_faults
        with self.engine.begin() as conn:
            if given:
                upsert(conn, t, {"id": 1, **SWITCHES_OFF, **given}, ["id"], list(given))
            row = conn.execute(select(t.c.fail, t.c.delay, t.c.refuse).where(t.c.id == 1)).first()
        return dict(row._mapping) if row else dict(SWITCHES_OFF)

    def _answer_or_fail(self, what: str) -> "Faults":
        faults = self.faults()
        if faults.fail:
            source = "USERGROUP_FAKE_OSS_FAIL is set" if settings().fake_oss_fail else "its fail switch is on"
            raise TransientError(f"fake OSS/BSS unavailable ({source}): {what}")
        return faults

    @staticmethod
    def _refuse(faults: "Faults", group_name: str) -> None:
        for source, pattern in faults.refuse:
            if pattern.search(group_name):
                raise RefusedByOssBssError(f"the OSS/BSS refuses group {group_name!r} (it matches {source})")

    @staticmethod
    def _read(conn, subscription_id: UUID, lock: bool = False) -> dict | None:
        query = select(fake_ossbss_groups.c.group_id, fake_ossbss_groups.c.group_name).where(
            fake_ossbss_groups.c.subscription_id == subscription_id)
        row = conn.execute(query.with_for_update() if lock else query).first()
        return dict(row._mapping) if row else None

    @staticmethod
    def _log(conn, subscription_id: UUID, action: str, group_name: str | None) -> None:
        conn.execute(insert(fake_ossbss_changes).values(subscription_id=subscription_id, action=action,
                                                        group_name=group_name, at=datetime.now(UTC)))


class Faults(NamedTuple):
    fail: bool
    delay: float
    refuse: list[tuple[str, re.Pattern[str]]]  # (where it was set, the pattern)


def _parts(rows: list, size: int = 1000):
    for start in range(0, len(rows), size):
        yield rows[start:start + size]
