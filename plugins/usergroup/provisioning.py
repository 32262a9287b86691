"""The OSS/BSS client interface and its fake, which keeps its groups (and a log of their changes) in tables of its
own."""

import os
import re
import time
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Protocol
from uuid import UUID

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import URL

from usergroup.store.engine import create_store_engine
from usergroup.store.sql import insert_ignore, insert_ignore_many

# The OSS/BSS may be away for minutes: its steps retry with exponential backoff (10 s, 20 s, ... at most 5 min apart).
OSSBSS_RETRIES = {"retries": 6, "retry_delay": timedelta(seconds=10), "retry_exponential_backoff": 2.0,
                  "max_retry_delay": timedelta(minutes=5), "execution_timeout": timedelta(minutes=10)}
FAIL_ENV = "USERGROUP_FAKE_OSS_FAIL"
REFUSE_ENV = "USERGROUP_FAKE_OSS_REFUSE"  # a regular expression: the group names it refuses to provision
DELAY_ENV = "USERGROUP_FAKE_OSS_DELAY"  # seconds it takes to answer, after provisioning: a slow OSS/BSS

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


class OssBssError(RuntimeError):
    """The OSS/BSS did not answer: another try may."""


class NotFoundError(OssBssError, ValueError):
    """The OSS/BSS holds no group (user) for the subscription: no retry cures that."""


class RefusedByOssBssError(ValueError):
    """The OSS/BSS refused the request for this item (a name it does not take): no retry cures that."""


class OssBssClient(Protocol):
    def provision_user_group(self, subscription_id: UUID, group_name: str) -> int:
        """Create (or find) the group for this subscription; return its id. Must be idempotent."""

    # Optional: a client may also offer `provision_user_groups(groups: dict[UUID, str]) -> dict[UUID, int |
    # Exception]`, the batch call (one answer per subscription); `provision_many` falls back to the call above.

    def rename_user_group(self, subscription_id: UUID, group_name: str) -> bool:
        """Give the subscription's group this name; False if it had it already. Idempotent."""

    def deprovision_user_group(self, subscription_id: UUID) -> bool:
        """Remove whatever group the OSS/BSS holds for this subscription; False if it held none. Idempotent."""

    def read_user_group(self, subscription_id: UUID) -> dict | None:
        """The group the OSS/BSS holds for this subscription ({group_id, group_name}), or None."""

    def provision_user(self, subscription_id: UUID, group_id: int, username: str, age: int | None) -> int:
        """Create (or find) the user for this subscription in the group; return its user id. Idempotent."""

    def update_user(self, subscription_id: UUID, username: str, age: int | None) -> bool:
        """Give the subscription's user this username and age; False if it had them already. Idempotent."""

    def deprovision_user(self, subscription_id: UUID) -> bool:
        """Remove whatever user the OSS/BSS holds for this subscription; False if it held none. Idempotent."""


class FakeOssBss:
    """Stands in for the OSS/BSS. Like a real one it commits on its own connection, outside the step's
    transaction, and it is idempotent per subscription: asked again, it returns the same group (and counts
    the call). On PostgreSQL its table sits beside the store's, on SQLite in a file of its own beside the
    store's file. USERGROUP_FAKE_OSS_FAIL=1 makes every call fail, to demonstrate a failure and its resume;
    USERGROUP_FAKE_OSS_DELAY=S makes it answer S seconds after it provisioned. On PostgreSQL it may share the
    store's `engine` (its own connection from the same pool: no second engine to set up in a task)."""

    def __init__(self, url: URL, db_schema: str, engine: Engine | None = None):
        self.url, self.db_schema, self._store_engine = url, db_schema, engine

    @cached_property
    def engine(self) -> Engine:
        url = self.url
        if url.get_backend_name() == "sqlite":
            path = Path(url.database)
            engine = create_store_engine(url.set(database=str(path.with_name(f"{path.stem}-fake-ossbss{path.suffix}"))),
                                         self.db_schema)
        else:
            engine = self._store_engine or create_store_engine(url, self.db_schema)
        with engine.begin() as conn:  # one creator at a time: tasks of a fresh store start together
            if conn.dialect.name == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(func.hashtext("usergroup.fake_ossbss"))))
            fake_metadata.create_all(conn, checkfirst=True)
        return engine

    def provision_user_group(self, subscription_id: UUID, group_name: str) -> int:
        self._answer_or_fail(f"group {group_name!r} not provisioned")
        self._refuse(group_name)
        subscription_id = UUID(str(subscription_id))
        with self.engine.begin() as conn:
            if insert_ignore(conn, fake_ossbss_groups,
                             {"subscription_id": subscription_id, "group_name": group_name, "calls": 0}):
                self._log(conn, subscription_id, "provision", group_name)
            conn.execute(update(fake_ossbss_groups).where(fake_ossbss_groups.c.subscription_id == subscription_id)
                         .values(calls=fake_ossbss_groups.c.calls + 1))
            group_id = self._read(conn, subscription_id)["group_id"]
        time.sleep(float(os.environ.get(DELAY_ENV) or 0))
        return group_id

    def provision_user_groups(self, groups: dict[UUID, str]) -> dict[UUID, int | Exception]:
        """The batch call: create (or find) the group of each subscription, in one transaction; per subscription
        (by UUID) its group id, or the refusal of that one."""
        self._answer_or_fail(f"{len(groups)} groups not provisioned")
        answers: dict[UUID, int | Exception] = {}
        rows = []
        for sid, name in groups.items():
            try:
                self._refuse(name)
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
        time.sleep(float(os.environ.get(DELAY_ENV) or 0))
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

    def provision_user(self, subscription_id: UUID, group_id: int, username: str, age: int | None) -> int:
        self._answer_or_fail(f"user {username!r} not provisioned")
        subscription_id = UUID(str(subscription_id))
        users = fake_ossbss_users
        with self.engine.begin() as conn:
            if insert_ignore(conn, users, {"subscription_id": subscription_id, "group_id": group_id,
                                           "username": username, "age": age, "calls": 0}):
                self._log(conn, subscription_id, "provision_user", username)
            conn.execute(update(users).where(users.c.subscription_id == subscription_id)
                         .values(calls=users.c.calls + 1))
            user_id = conn.execute(select(users.c.user_id).where(users.c.subscription_id == subscription_id)).scalar()
        time.sleep(float(os.environ.get(DELAY_ENV) or 0))
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

    @staticmethod
    def _answer_or_fail(what: str) -> None:
        if os.environ.get(FAIL_ENV, "") not in ("", "0"):
            raise OssBssError(f"fake OSS/BSS unavailable ({FAIL_ENV} is set): {what}")

    @staticmethod
    def _refuse(group_name: str) -> None:
        if (pattern := os.environ.get(REFUSE_ENV)) and re.search(pattern, group_name):
            raise RefusedByOssBssError(f"the OSS/BSS refuses group {group_name!r} (it matches {REFUSE_ENV})")

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


def provision_many(oss: OssBssClient, groups: dict[UUID, str]) -> dict[UUID, int | Exception]:
    """Provision many groups: the client's batch call if it has one, else one call per group. An item's refusal
    (a ValueError) is its answer; any other error (the OSS/BSS is away) is raised, for the whole batch."""
    if batch := getattr(oss, "provision_user_groups", None):
        return batch(groups)
    answers: dict[UUID, int | Exception] = {}
    for sid, name in groups.items():
        try:
            answers[UUID(str(sid))] = oss.provision_user_group(sid, name)
        except ValueError as exc:
            answers[UUID(str(sid))] = exc
    return answers


class Answered:
    """The OSS/BSS as a step of a bulk run's chunk sees it: the provisioning asked for the whole chunk at once
    (`provision_many`) answers each item's call; any other call, or one it has no answer for, goes through."""

    def __init__(self, oss: OssBssClient, answers: dict[UUID, int | Exception]):
        self._oss, self._answers = oss, answers

    def provision_user_group(self, subscription_id: UUID, group_name: str) -> int:
        answer = self._answers.get(UUID(str(subscription_id)))
        if answer is None:
            return self._oss.provision_user_group(subscription_id, group_name)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def __getattr__(self, name: str):
        return getattr(self._oss, name)


def _parts(rows: list, size: int = 1000):
    for start in range(0, len(rows), size):
        yield rows[start:start + size]
