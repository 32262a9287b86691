"""What our tasks import, imported once by an Airflow component as it starts, for the processes it forks."""

import logging

log = logging.getLogger(__name__)


def preload() -> None:
    """Import every workflow's declaration and what its DAG file, its tasks and their store and OSS/BSS clients
    import. A scheduler's LocalExecutor forks its workers after this, and they fork each task process: those find
    it all imported (`benchmarks/task_cost.py --preload worker` measures it); a dag-processor's parsing processes
    too. A change to the package's code then needs a restart of the component, as a change to a
    plugin already did. A failure here (a bad USERGROUP_* setting) is logged, not raised: the tasks report it."""
    try:
        import psycopg2  # noqa: F401 - the store's driver and dialect, imported at a task's first connection
        import sqlalchemy.dialects.postgresql.psycopg2  # noqa: F401

        import usergroup.airflow.dags  # noqa: F401
        import usergroup.ossbss.fake  # noqa: F401
        import usergroup.ossbss.scim.client  # noqa: F401 - its SCIM models: ~0.8 s of CPU to import
        from usergroup.engine.discovery import declared

        declared()
    except Exception:
        log.exception("usergroup: could not preload the workflows (each task imports them itself)")
