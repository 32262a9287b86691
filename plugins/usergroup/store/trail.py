"""The trail: a process's steps, one row per task try that reached the store."""

from types import SimpleNamespace
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, select, update

from usergroup.domain import ProcessStatus
from usergroup.store.errors import ProcessAbortedError, StoreError
from usergroup.store.sql import now, upsert_many
from usergroup.store.tables import (
    process_steps,
)


class Trail:
    conn: Connection

    def enter_step(self, process_id: UUID, task_id: str, map_index: int = -1) -> SimpleNamespace:
        """Lock the process for this step's transaction and mark it running at `task_id` (`lock` with `enter`);
        refuse a process that is not there or was aborted."""
        process = self.lock([process_id], task_id, map_index, enter=True).get(process_id)
        if process is None:
            raise StoreError(f"no process {process_id}: its first task has not run")
        if process.status == ProcessStatus.ABORTED:
            raise ProcessAbortedError(f"process {process_id} was aborted ({process.failed_reason}): none of its "
                                      "steps runs any more")
        return process

    def record_step(self, process_id: UUID, name: str, **row: Any) -> None:
        """`record_steps` of one."""
        self.record_steps([{"process_id": process_id, "name": name, **row}])

    def record_steps(self, rows: list[dict[str, Any]]) -> None:
        """One row per try of a task (`task_id`, `map_index`) in each process, running the step `name`: {process_id,
        name, task_id, map_index, try_number, status, state, error, note?, hostname?, started_at}; recording the
        same try again replaces it."""
        completed = now()
        upsert_many(self.conn, process_steps, [{"map_index": -1, "note": None, "hostname": None, "completed_at":
                                                completed, **r} for r in rows],
                    ["process_id", "task_id", "map_index", "try_number"])

    def fail_steps(self, failures: dict[UUID, tuple[str, str]], status: ProcessStatus, **row: Any) -> None:
        """The one record of failures: each process's failed try of one task (`row`: name, task_id, map_index,
        try_number, hostname, started_at), with (reason, traceback), and why the process stopped (`status`). A try
        that had already committed (it crashed after its commit) keeps its success, with the error added, and its
        process its status."""
        if not failures:
            return
        key = and_(process_steps.c.task_id == row["task_id"], process_steps.c.map_index == row.get("map_index", -1),
                   process_steps.c.try_number == row["try_number"], process_steps.c.status == "success")
        committed = set(self.conn.execute(select(process_steps.c.process_id).where(
            key, process_steps.c.process_id.in_(list(failures)))).scalars())
        for pid in committed:
            why, tail = failures[pid]
            self.conn.execute(update(process_steps).where(key, process_steps.c.process_id == pid)
                              .values(error=f"{why}\n{tail}", note="crashed after its commit"))
        failed = {pid: f for pid, f in failures.items() if pid not in committed}
        self.record_steps([{**row, "process_id": pid, "status": "failed", "state": None, "error": f"{why}\n{tail}"}
                           for pid, (why, tail) in failed.items()])
        self.fail_processes([{"pid": pid, "last_step": row["task_id"], "failed_reason": why, "traceback": tail}
                             for pid, (why, tail) in failed.items()], status)

    def completed_step(self, process_id: UUID, task_id: str, map_index: int = -1) -> dict[str, Any] | None:
        """The try that committed this task (instance) in this process, with the state it left, if any."""
        row = self.conn.execute(
            select(process_steps.c.try_number, process_steps.c.state)
            .where(process_steps.c.process_id == process_id, process_steps.c.task_id == task_id,
                   process_steps.c.map_index == map_index, process_steps.c.status == "success")
        ).first()
        return dict(row._mapping) if row else None

    def steps_of(self, process_id: UUID | str) -> list[dict[str, Any]]:
        rows = self.conn.execute(select(process_steps)
                                 .where(process_steps.c.process_id == UUID(str(process_id)))
                                 .order_by(process_steps.c.started_at, process_steps.c.step_id))
        return [dict(r._mapping) for r in rows]

