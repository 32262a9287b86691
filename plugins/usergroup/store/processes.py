"""Processes: opened, locked for a task's try, completed, failed, aborted, and linked to their subscriptions."""

from types import SimpleNamespace
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, bindparam, func, or_, select, update

from usergroup.domain import ProcessStatus
from usergroup.store.errors import StoreError
from usergroup.store.search import equal
from usergroup.store.sql import insert_ignore_many, now
from usergroup.store.tables import (
    process_steps,
    processes,
    processes_subscriptions,
)

UNFINISHED = (ProcessStatus.CREATED, ProcessStatus.RUNNING, ProcessStatus.SUSPENDED, ProcessStatus.FAILED)
# Processes whose claims count: those whose first task has run (one the API opened is `created` until then, and
# claims nothing: of concurrent runs the first whose first task claims the name wins).
CLAIMING = (ProcessStatus.RUNNING, ProcessStatus.SUSPENDED, ProcessStatus.FAILED)
LIVE = (str(ProcessStatus.CREATED), str(ProcessStatus.RUNNING), str(ProcessStatus.SUSPENDED))  # its run goes on
FINAL = (str(ProcessStatus.ABORTED), str(ProcessStatus.COMPLETED))  # a process that ended keeps its status


class Processes:
    conn: Connection

    def start_process(self, process_id: UUID, **row: Any) -> None:
        """`open_processes` of one."""
        self.open_processes([{"process_id": process_id, **row}])

    def open_processes(self, rows: list[dict[str, Any]]) -> None:
        """Create the process rows (`created`) that do not exist yet: each {process_id, workflow_name,
        workflow_target, dag_id, run_id, created_by, input_state, map_index?}. A row that exists is left as it is,
        but the first task's state replaces the input of one still `created` (one the API opened)."""
        t = now()
        rows = [{"status": str(ProcessStatus.CREATED), "map_index": -1, "started_at": t, "last_modified_at": t, **r}
                for r in rows]
        opened = set(insert_ignore_many(self.conn, processes, rows, processes.c.process_id))
        if existing := [{"pid": r["process_id"], "input_state": r["input_state"]} for r in rows
                        if r["process_id"] not in opened]:
            self.conn.execute(update(processes).where(processes.c.process_id == bindparam("pid"),
                                                      processes.c.status == str(ProcessStatus.CREATED)), existing)

    def lock(self, ids: list[UUID], task_id: str, map_index: int = -1, previous: str | None = None,
             enter: bool = False) -> dict[UUID, SimpleNamespace]:
        """The processes of `ids`, locked until this transaction ends (a second live try of a task waits here, then
        finds the first one's commit), each with its status, failed_reason, input_state (without `previous`), the
        try that committed `task_id` (`done_try`) with the state it left (`done_state`), the state the `previous`
        task left (`previous_state`). With `enter`, those not ended are marked running at `task_id` by the
        statement that locks them, and each has the answer given to it while suspended (`answer`, see
        `resume_process`)."""
        found: dict[UUID, SimpleNamespace] = {}
        if enter:
            entered = self.conn.execute(self._running(ids, task_id).returning(processes.c.process_id,
                                                                              processes.c.answer))
            found = {r.process_id: SimpleNamespace(status=str(ProcessStatus.RUNNING), failed_reason=None,
                                                   input_state=None, answer=r.answer) for r in entered}
        if rest := [pid for pid in ids if pid not in found]:
            # A later task of a bulk run reads neither the input (it has the previous task's state) nor an answer.
            wanted = [processes.c.input_state] * (previous is None) + [processes.c.answer] * enter
            rows = self.conn.execute(select(processes.c.process_id, processes.c.status, processes.c.failed_reason,
                                            *wanted).where(processes.c.process_id.in_(rest)).with_for_update())
            found |= {r.process_id: SimpleNamespace(**{"input_state": None, "answer": None, **r._mapping})
                      for r in rows}
        for p in found.values():
            p.done_try = p.done_state = p.previous_state = None
        # Read after the lock: a try that waited for it sees the commit of the one it waited for.
        tasks = [and_(process_steps.c.task_id == task_id, process_steps.c.map_index == map_index)]
        if previous is not None:
            tasks.append(process_steps.c.task_id == previous)
        steps = self.conn.execute(select(process_steps.c.process_id, process_steps.c.task_id,
                                         process_steps.c.try_number, process_steps.c.state).where(
            process_steps.c.process_id.in_(list(found)), process_steps.c.status == "success", or_(*tasks)))
        for r in steps:
            if r.task_id == task_id:
                found[r.process_id].done_try, found[r.process_id].done_state = r.try_number, r.state
            if r.task_id == previous:
                found[r.process_id].previous_state = r.state
        return found

    def run_process_ids(self, dag_id: str, run_id: str) -> list[UUID]:
        """The ids of the run's processes, in id order."""
        return list(self.conn.execute(select(processes.c.process_id).where(
            processes.c.dag_id == dag_id, processes.c.run_id == run_id).order_by(processes.c.process_id)).scalars())

    def running(self, ids: list[UUID], task_id: str) -> None:
        """The processes run `task_id` now (a completed one, whose tasks were cleared, stays completed)."""
        if ids:
            self.conn.execute(self._running(ids, task_id))

    @staticmethod
    def _running(ids: list[UUID], task_id: str):
        return (update(processes).where(processes.c.process_id.in_(ids), processes.c.status.not_in(FINAL))
                .values(status=str(ProcessStatus.RUNNING), last_step=task_id, failed_reason=None, traceback=None,
                        last_modified_at=now()))

    def complete_process(self, process_id: UUID) -> None:
        """`complete` of one: from any status but running it is refused."""
        if not self.complete([process_id]):
            process = self.get_process(process_id)
            raise StoreError(f"process {process_id} is {process['status'] if process else 'missing'}: only a "
                             "running process can complete")

    def complete(self, ids: list[UUID]) -> int:
        """`running` -> `completed`; how many were."""
        return self.conn.execute(update(processes).where(processes.c.process_id.in_(ids),
                                                         processes.c.status == str(ProcessStatus.RUNNING))
                                 .values(status=str(ProcessStatus.COMPLETED), answer=None, last_modified_at=now())
                                 ).rowcount \
            if ids else 0

    def suspend_process(self, process_id: UUID) -> None:
        """`running` -> `suspended`: it waits for an operator's answer at its last step (an answer it held was
        taken or refused)."""
        self.conn.execute(update(processes).where(processes.c.process_id == process_id,
                                                  processes.c.status == str(ProcessStatus.RUNNING))
                          .values(status=str(ProcessStatus.SUSPENDED), answer=None, last_modified_at=now()))

    def resume_process(self, process_id: UUID, answer: dict[str, Any] | None = None) -> None:
        """`failed` or `suspended` -> `running`: its failed task was cleared and runs again, or it was answered.
        The `answer` ({task_id, map_index, fields, by, at}) is kept until the process is suspended, fails or
        completes: a retry of the task it was given to takes it from here (`lock`)."""
        self.conn.execute(update(processes).where(processes.c.process_id == process_id, processes.c.status.in_(
            [str(ProcessStatus.FAILED), str(ProcessStatus.SUSPENDED)]))
                          .values(status=str(ProcessStatus.RUNNING), answer=answer, last_modified_at=now()))

    def fail_process(self, process_id: UUID, status: ProcessStatus, *, last_step: str, failed_reason: str,
                     traceback: str | None = None) -> None:
        """`fail_processes` of one."""
        self.fail_processes([{"pid": process_id, "last_step": last_step, "failed_reason": failed_reason,
                              "traceback": traceback}], status)

    def fail_processes(self, failures: list[dict[str, Any]], status: ProcessStatus = ProcessStatus.FAILED) -> None:
        """Record why each process stopped (`failed` or `aborted`): {pid, last_step, failed_reason, traceback}; an
        aborted or completed one keeps its status."""
        if failures:
            self.conn.execute(update(processes).where(processes.c.process_id == bindparam("pid"),
                                                      *(processes.c.status != s for s in FINAL))  # no IN: executemany
                              .values(status=str(status), answer=None, last_modified_at=now()), failures)

    def abort_process(self, process_id: UUID, reason: str) -> None:
        """The operator's word that a process will not go on: from then on none of its steps runs. Aborting an
        aborted process again records the new reason; a completed process cannot be aborted."""
        aborted = self.conn.execute(
            update(processes)
            .where(processes.c.process_id == process_id,
                   processes.c.status.in_([*UNFINISHED, ProcessStatus.ABORTED]))
            .values(status=str(ProcessStatus.ABORTED), failed_reason=reason, answer=None, last_modified_at=now())
        ).rowcount
        if not aborted:
            process = self.get_process(process_id)
            if process is None:
                raise StoreError(f"no process {process_id}")
            raise StoreError(f"process {process_id} is {process['status']}: only an unfinished process can be "
                             "aborted")

    def stop_run(self, dag_id: str, run_id: str, reason: str) -> None:
        """The run was stopped (marked failed): its processes still created, running or suspended fail, with
        `reason`."""
        self.conn.execute(update(processes).where(
            processes.c.dag_id == dag_id, processes.c.run_id == run_id, processes.c.status.in_(LIVE))
            .values(status=str(ProcessStatus.FAILED), failed_reason=reason, answer=None, last_modified_at=now()))

    def run_outcome(self, dag_id: str, run_id: str) -> tuple[dict[str, int], list[dict[str, Any]]]:
        """How many of the run's processes are in each status, and those not completed nor aborted (by id)."""
        of_run = (processes.c.dag_id == dag_id, processes.c.run_id == run_id)
        counts = {r.status: r.n for r in self.conn.execute(
            select(processes.c.status, func.count().label("n")).where(*of_run).group_by(processes.c.status))}
        unfinished = self.conn.execute(select(processes.c.process_id, processes.c.input_state, processes.c.last_step,
                                              processes.c.failed_reason)
                                       .where(*of_run, processes.c.status.not_in(FINAL))
                                       .order_by(processes.c.process_id))
        return counts, [dict(r._mapping) for r in unfinished]

    def get_process(self, process_id: UUID | str, lock: bool = False) -> dict[str, Any] | None:
        """The process row; `lock` holds it until the transaction ends (as a step's transaction does)."""
        query = select(processes).where(processes.c.process_id == UUID(str(process_id)))
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        return dict(row._mapping) if row else None

    def list_processes(self, *, order: list[tuple[str, bool]] = (("started_at", False),), offset: int = 0,
                       limit: int | None = None, **where: str | None) -> list[dict[str, Any]]:
        """The processes whose columns equal the values given (those not None: dag_id, run_id, status, ...), in
        `order` ((column, descending), the first the primary)."""
        conditions = equal(processes, where)
        if conditions is None:
            return []
        query = select(processes).where(*conditions).order_by(
            *(processes.c[k].desc() if desc else processes.c[k] for k, desc in order), processes.c.process_id)
        return [dict(r._mapping) for r in self.conn.execute(query.offset(offset).limit(limit))]

    def count_processes(self, **where: str | None) -> int:
        conditions = equal(processes, where)
        return 0 if conditions is None else self.conn.execute(
            select(func.count()).select_from(processes).where(*conditions)).scalar_one()

    def subscriptions_of(self, process_id: UUID | str) -> list[UUID]:
        rows = self.conn.execute(select(processes_subscriptions.c.subscription_id)
                                 .where(processes_subscriptions.c.process_id == UUID(str(process_id))))
        return [r.subscription_id for r in rows]

    def link_subscription(self, process_id: UUID, subscription_id: UUID, workflow_target: str) -> None:
        self.link([(process_id, subscription_id)], workflow_target)

    def link(self, links: list[tuple[UUID, UUID]], workflow_target: str) -> None:
        """Each (process, subscription): the subscription is the process's (a process has one; linking it again
        changes nothing)."""
        t = now()
        insert_ignore_many(self.conn, processes_subscriptions, [
            {"process_id": pid, "subscription_id": sid, "workflow_target": workflow_target, "created_at": t}
            for pid, sid in links], processes_subscriptions.c.process_id)

    def processes_of(self, subscription_id: UUID | str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(processes, processes_subscriptions.c.workflow_target.label("link_target"))
            .join(processes_subscriptions, processes_subscriptions.c.process_id == processes.c.process_id)
            .where(processes_subscriptions.c.subscription_id == UUID(str(subscription_id)))
            .order_by(processes.c.started_at)
        )
        return [dict(r._mapping) for r in rows]


def describe(process: dict[str, Any]) -> str:
    return f"{process['process_id']} ({process['workflow_name']}, {process['status']})"

