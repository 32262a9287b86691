"""The OSS/BSS client interface and its fake, which keeps the groups it provisioned in a table of its own."""

import os
import time
from functools import cached_property
from pathlib import Path
from typing import Protocol
from uuid import UUID

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, Uuid, delete, select, update
from sqlalchemy.engine import URL

from usergroup.store.engine import create_store_engine
from usergroup.store.sql import insert_ignore

FAIL_ENV = "USERGROUP_FAKE_OSS_FAIL"
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


class OssBssError(RuntimeError):
    pass


class OssBssClient(Protocol):
    def provision_user_group(self, subscription_id: UUID, group_name: str) -> int:
        """Create (or find) the group for this subscription; return its id. Must be idempotent."""

    def deprovision_user_group(self, subscription_id: UUID) -> bool:
        """Remove whatever group the OSS/BSS holds for this subscription; False if it held none. Idempotent."""


class FakeOssBss:
    """Stands in for the OSS/BSS. Like a real one it commits on its own connection, outside the step's
    transaction, and it is idempotent per subscription: asked again, it returns the same group (and counts
    the call). On PostgreSQL its table sits beside the store's, on SQLite in a file of its own beside the
    store's file. USERGROUP_FAKE_OSS_FAIL=1 makes every call fail, to demonstrate a failure and its resume;
    USERGROUP_FAKE_OSS_DELAY=S makes it answer S seconds after it provisioned."""

    def __init__(self, url: URL, db_schema: str):
        self.url, self.db_schema = url, db_schema

    @cached_property
    def engine(self) -> Engine:
        url = self.url
        if url.get_backend_name() == "sqlite":
            path = Path(url.database)
            url = url.set(database=str(path.with_name(f"{path.stem}-fake-ossbss{path.suffix}")))
        engine = create_store_engine(url, self.db_schema)
        fake_metadata.create_all(engine, checkfirst=True)
        return engine

    def provision_user_group(self, subscription_id: UUID, group_name: str) -> int:
        if os.environ.get(FAIL_ENV, "") not in ("", "0"):
            raise OssBssError(f"fake OSS/BSS unavailable ({FAIL_ENV} is set): group {group_name!r} not provisioned")
        subscription_id = UUID(str(subscription_id))
        with self.engine.begin() as conn:
            insert_ignore(conn, fake_ossbss_groups,
                           {"subscription_id": subscription_id, "group_name": group_name, "calls": 0})
            conn.execute(update(fake_ossbss_groups).where(fake_ossbss_groups.c.subscription_id == subscription_id)
                         .values(calls=fake_ossbss_groups.c.calls + 1))
            group_id = conn.execute(select(fake_ossbss_groups.c.group_id)
                                    .where(fake_ossbss_groups.c.subscription_id == subscription_id)).scalar_one()
        time.sleep(float(os.environ.get(DELAY_ENV) or 0))
        return group_id

    def deprovision_user_group(self, subscription_id: UUID) -> bool:
        if os.environ.get(FAIL_ENV, "") not in ("", "0"):
            raise OssBssError(f"fake OSS/BSS unavailable ({FAIL_ENV} is set): group of {subscription_id} not removed")
        with self.engine.begin() as conn:
            removed = conn.execute(delete(fake_ossbss_groups)
                                   .where(fake_ossbss_groups.c.subscription_id == UUID(str(subscription_id))))
        return removed.rowcount == 1

    def groups(self) -> list[dict]:
        """What it provisioned: one row per group, with how often it was asked for it."""
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(fake_ossbss_groups))]
