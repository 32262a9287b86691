"""Every knob of usergroup in one typed object, read from the environment once per process (`settings()`)."""

import re
from datetime import timedelta
from functools import cache
from typing import Annotated, Any, ClassVar
from uuid import UUID

from pydantic import BeforeValidator, NonNegativeFloat, PositiveInt, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "USERGROUP_"


def _seconds(value: Any) -> Any:
    """A duration given as a number of seconds ("90", "0.5"); anything else as pydantic takes it ("PT5M")."""
    try:
        return timedelta(seconds=float(value)) if isinstance(value, str) else value
    except ValueError:
        return value


Duration = Annotated[timedelta, BeforeValidator(_seconds)]


class Settings(BaseSettings):
    """Each field is set by the environment variable `USERGROUP_<FIELD>` (e.g. `USERGROUP_CHUNK_SIZE=200`; a
    duration in seconds or ISO 8601: `USERGROUP_BULK_TIMEOUT=7200`)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True)

    # The Airflow Variables operators set (`airflow variables set ...`), read by the run's first task.
    customer_variable: ClassVar[str] = "usergroup_customer_id"  # no CRM: the customer of the subscriptions made
    sources_variable: ClassVar[str] = "usergroup_bulk_sources"  # comma-separated: where a bulk run's `source` may be
    default_customer_id: UUID = UUID("8f4b1a52-2c7e-4d1c-9a3e-0b6f5d2e7c10")  # one faked customer

    # Airflow: every task runs in the pool (it bounds how many use the store at once) with these retries.
    store_pool: str = "usergroup_store"
    task_retries: int = 2
    task_retry_delay: Duration = timedelta(seconds=5)
    task_timeout: Duration = timedelta(minutes=5)
    # The OSS/BSS may be away for minutes: its steps retry with exponential backoff (10 s, 20 s, ... 5 min apart).
    ossbss_retries: int = 6
    ossbss_retry_delay: Duration = timedelta(seconds=10)
    ossbss_max_retry_delay: Duration = timedelta(minutes=5)
    ossbss_timeout: Duration = timedelta(minutes=10)
    approval_timeout: Duration = timedelta(days=7)  # how long an external user's create waits for an operator
    asking_max_active_runs: PositiveInt = 10_000  # runs of a workflow that asks (each may wait for days) at once
    bulk_timeout: Duration = timedelta(hours=1)  # a bulk task runs its step for up to `max_items` items
    listener_lock_timeout: NonNegativeFloat = 2  # seconds the listener waits for a run's processes when it ends

    # The engine and a bulk run's limits.
    chunk_size: PositiveInt = 500  # processes per transaction
    bulk_workers: PositiveInt = 2  # chunks a bulk task runs at once on PostgreSQL, each on a connection of its own
    max_items: PositiveInt = 10_000  # items a bulk run takes
    max_source_bytes: PositiveInt = 16 * 1024 * 1024  # 10,000 names of 255 characters of 4 bytes, and line ends

    # The fake OSS/BSS's fault switches, for tests and demos.
    fake_oss_fail: bool = False  # every call fails as unavailable (transient: retried)
    fake_oss_refuse: re.Pattern[str] | None = None  # the group names it refuses to provision (permanent)
    fake_oss_delay: NonNegativeFloat = 0  # seconds it takes to answer, after provisioning: a slow OSS/BSS

    @property
    def task_defaults(self) -> dict[str, Any]:
        """The default_args of every task."""
        return {"retries": self.task_retries, "retry_delay": self.task_retry_delay,
                "execution_timeout": self.task_timeout, "pool": self.store_pool}

    @property
    def ossbss_task_options(self) -> dict[str, Any]:
        """The task options of a step that calls the OSS/BSS."""
        return {"retries": self.ossbss_retries, "retry_delay": self.ossbss_retry_delay,
                "retry_exponential_backoff": 2.0, "max_retry_delay": self.ossbss_max_retry_delay,
                "execution_timeout": self.ossbss_timeout}


class SettingsError(ValueError):
    """An environment variable of ours holds what its setting cannot take."""


@cache
def settings() -> Settings:
    """The settings of this process, read once (a test that changes the environment calls `settings.cache_clear()`)."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError("; ".join(f"{ENV_PREFIX}{'_'.join(map(str, e['loc'])).upper()}={e['input']!r}: {e['msg']}"
                                      for e in exc.errors())) from None
