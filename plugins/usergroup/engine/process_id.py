"""A process's id: one per DAG run, or per item of a run that runs a workflow for many, the same on every try."""

from uuid import UUID, uuid5

PROCESS_NAMESPACE = UUID("0d8f6f3e-6a52-4f61-8b43-54d5b6a0c1a9")


def process_id_for(dag_id: str, run_id: str, item: UUID | str | None = None) -> UUID:
    """One process per DAG run (per item, a subscription or a bulk run's input, in a run that runs a workflow for
    many), the same on every try (and, for a subscription, whichever mapped task instance runs it)."""
    return uuid5(PROCESS_NAMESPACE, f"{dag_id}/{run_id}" + (f"/{item}" if item else ""))
