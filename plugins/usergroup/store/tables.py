"""SQLAlchemy tables. `usergroup` is a placeholder schema: the engine maps it to the configured one."""

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.types import TypeDecorator

SCHEMA_TOKEN = "usergroup"


class OssBssIdText(TypeDecorator):
    """An OSS/BSS id (`usergroup.domain.ossbss_id`): a number or a string, kept as text (the domain reads "7" as 7)."""

    impl = String(255)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else str(value)


class UTCDateTime(TypeDecorator):
    """A timezone-aware timestamp on both databases: SQLite drops the zone, so read values back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps timezone-aware timestamps")
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

metadata = MetaData(schema=SCHEMA_TOKEN)

products = Table(
    "products",
    metadata,
    Column("product_id", Uuid, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("product_type", String(255), nullable=False),
    Column("tag", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# orchestrator-core's fixed inputs: a product's fixed values (a User's affiliation), fields of its subscriptions.
fixed_inputs = Table(
    "fixed_inputs",
    metadata,
    Column("fixed_input_id", Integer, primary_key=True, autoincrement=True),
    Column("product_id", Uuid, ForeignKey(products.c.product_id), nullable=False),
    Column("name", String(255), nullable=False),
    Column("value", String(255), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("product_id", "name", name="uq_fixed_inputs_product_name"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("subscription_id", Uuid, primary_key=True),
    Column("product_id", Uuid, ForeignKey(products.c.product_id), nullable=False),
    Column("customer_id", Uuid, nullable=False, index=True),
    Column("description", Text, nullable=False),
    Column("status", String(20), nullable=False, index=True),
    Column("insync", Boolean, nullable=False),
    Column("start_date", UTCDateTime),
    Column("end_date", UTCDateTime),
    Column("note", Text),
    Column("version", Integer, nullable=False),
    Index("ix_subscriptions_start_date", "start_date", "subscription_id"),  # the Subscriptions page's order
)

processes = Table(
    "processes",
    metadata,
    Column("process_id", Uuid, primary_key=True),
    Column("workflow_name", String(255), nullable=False),
    Column("workflow_target", String(20), nullable=False),
    Column("status", String(20), nullable=False, index=True),
    Column("last_step", String(255)),
    Column("failed_reason", Text),
    Column("traceback", Text),
    Column("dag_id", String(250), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("map_index", Integer, nullable=False, server_default="-1"),  # the mapped task instance that opened it
    Column("created_by", String(255)),
    Column("input_state", JSON, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_modified_at", UTCDateTime, nullable=False),
    Column("answer", JSON),  # given to it while suspended, until its input step takes it: {task_id, map_index, ...}
    Index("ix_processes_dag_run", "dag_id", "run_id"),  # unique per run, or per run and subscription: its id
)

process_steps = Table(
    "process_steps",
    metadata,
    Column("step_id", Integer, primary_key=True, autoincrement=True),
    Column("process_id", Uuid, ForeignKey(processes.c.process_id), nullable=False, index=True),
    Column("name", String(255), nullable=False),  # the step
    Column("task_id", String(250), nullable=False),  # the Airflow task that ran it (a step may run twice)
    Column("map_index", Integer, nullable=False, server_default="-1"),  # -1 unless the task is mapped
    Column("status", String(20), nullable=False),
    Column("try_number", Integer, nullable=False),
    Column("state", JSON),
    Column("error", Text),
    Column("note", Text),
    Column("hostname", String(255)),  # the worker that ran the try
    Column("started_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime, nullable=False),
    UniqueConstraint("process_id", "task_id", "map_index", "try_number", name="uq_process_steps_task_try"),
)

processes_subscriptions = Table(
    "processes_subscriptions",
    metadata,
    Column("process_id", Uuid, ForeignKey(processes.c.process_id), primary_key=True),
    Column("subscription_id", Uuid, ForeignKey(subscriptions.c.subscription_id), primary_key=True),
    Column("workflow_target", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# The transactional outbox of subscription events: a process that completes writes its event here in the
# transaction that completes it; the task that completed it announces it (an Airflow asset event) and marks it
# announced once Airflow has taken it, so an event is neither lost nor sent twice by a task's retry.
subscription_events = Table(
    "subscription_events",
    metadata,
    Column("process_id", Uuid, ForeignKey(processes.c.process_id), primary_key=True),
    Column("subscription_id", Uuid, nullable=False),
    Column("product_type", String(255), nullable=False),
    Column("workflow_name", String(255), nullable=False),
    Column("workflow_target", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    Column("completed_at", UTCDateTime, nullable=False),
    Column("announced_at", UTCDateTime),
)
