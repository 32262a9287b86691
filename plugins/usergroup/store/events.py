"""Subscription events: the outbox a process writes in the transaction that completes it, read by the task that
announces them (an Airflow asset event each) and marked announced once Airflow has taken them."""

from typing import Any
from uuid import UUID

from sqlalchemy import Connection, select, update

from usergroup.store.sql import insert_ignore_many, now
from usergroup.store.tables import processes, subscription_events

BATCH = 1000  # ids per statement when marking a bulk run's events


class Events:
    conn: Connection

    def record_events(self, rows: list[dict[str, Any]]) -> None:
        """The events of processes that complete now: {process_id, subscription_id, product_type, workflow_name,
        workflow_target, status, version}; one recorded before stays as it was."""
        t = now()
        insert_ignore_many(self.conn, subscription_events, [{**r, "completed_at": t} for r in rows],
                           subscription_events.c.process_id)

    def unannounced(self, process_ids: list[UUID] = (), run: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        """The events not yet announced of the processes `process_ids`, or of the run (dag_id, run_id), by
        process id."""
        events = subscription_events
        query = select(events).where(events.c.announced_at.is_(None)).order_by(events.c.process_id)
        if run is not None:
            query = query.join(processes, processes.c.process_id == events.c.process_id).where(
                processes.c.dag_id == run[0], processes.c.run_id == run[1])
        else:
            query = query.where(events.c.process_id.in_(list(process_ids)))
        return [dict(r._mapping) for r in self.conn.execute(query)]

    def announce(self, process_ids: list[UUID]) -> int:
        """Mark the events of these processes announced; how many were not before."""
        events, marked, t = subscription_events, 0, now()
        for start in range(0, len(process_ids), BATCH):
            marked += self.conn.execute(update(events).where(
                events.c.process_id.in_(process_ids[start:start + BATCH]), events.c.announced_at.is_(None))
                .values(announced_at=t)).rowcount
        return marked
