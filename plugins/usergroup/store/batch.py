"""The repository's writes and reads for many processes at once: what a bulk run's chunk does in a few statements."""

from typing import Any
from uuid import UUID

from sqlalchemy import and_, bindparam, func, not_, select, update

from usergroup.domain import ProcessStatus, SubscriptionModel
from usergroup.domain.names import name_key
from usergroup.store.mappings import mapping_for
from usergroup.store.repository import (
    Repository,
    block_row,
    describe,
    duplicate_message,
    now,
    subscription_row,
)
from usergroup.store.sql import insert_ignore_many, upsert_many
from usergroup.store.tables import process_steps, processes, processes_subscriptions, subscriptions


class Batch:
    """Set-based operations on one transaction's repository, for the processes of one run."""

    def __init__(self, repo: Repository, dag_id: str, run_id: str):
        self.repo, self.conn, self.dag_id, self.run_id = repo, repo.conn, dag_id, run_id

    def start_processes(self, rows: list[dict[str, Any]]) -> None:
        """Create the process rows that do not exist yet (`created`, as `Repository.start_process`)."""
        t = now()
        insert_ignore_many(self.conn, processes, [
            {"status": str(ProcessStatus.CREATED), "dag_id": self.dag_id, "run_id": self.run_id, "started_at": t,
             "last_modified_at": t, **row} for row in rows], processes.c.process_id)

    def lock(self, ids: list[UUID] | None = None, after: UUID | None = None, limit: int | None = None,
             inputs: bool = False) -> dict[UUID, Any]:
        """The status (with `inputs`: the status and the input state) of the run's processes (those of `ids`, or
        the next `limit` after `after` in id order), locked until the transaction ends (as
        `Repository.enter_step` locks one)."""
        columns = [processes.c.status, processes.c.input_state] if inputs else [processes.c.status]
        query = select(processes.c.process_id, *columns).where(
            processes.c.dag_id == self.dag_id, processes.c.run_id == self.run_id)
        if ids is not None:
            query = query.where(processes.c.process_id.in_(ids))
        if after is not None:
            query = query.where(processes.c.process_id > after)
        rows = self.conn.execute(query.order_by(processes.c.process_id).limit(limit).with_for_update())
        return {r.process_id: (r.status, r.input_state) if inputs else r.status for r in rows}

    def committed(self, ids: list[UUID], task_ids: list[str]) -> dict[tuple[UUID, str], dict[str, Any]]:
        """The state each of the tasks left in each process, where it committed."""
        rows = self.conn.execute(select(process_steps.c.process_id, process_steps.c.task_id, process_steps.c.state)
                                 .where(process_steps.c.process_id.in_(ids), process_steps.c.task_id.in_(task_ids),
                                        process_steps.c.status == "success"))
        return {(r.process_id, r.task_id): r.state for r in rows}

    def claim_names(self, product_type: str, scope: UUID, names: dict[UUID, str]) -> dict[UUID, str]:
        """`Repository.claim_name` for many processes of this run at once (their names differ by `name_key`):
        why each name that may not be claimed is refused, by process."""
        unique = mapping_for(product_type).unique_name
        self.repo.lock_names(product_type, scope)
        keys, refused = {}, {}
        for pid, name in names.items():  # the run gave each name once; should it not, the first one claims it
            if (first := keys.setdefault(name_key(name), pid)) != pid:
                refused[pid] = f"{unique.field} {name!r} is given twice in this run (as {names[first]!r} too)"
        table = mapping_for(product_type).table
        holders = self.conn.execute(
            select(table.c.name_key, subscriptions.c.subscription_id, subscriptions.c.status)
            .join(subscriptions, subscriptions.c.subscription_id == table.c.subscription_id)
            .where(unique.scope == scope, table.c.name_key.in_(list(keys))))
        for holder in holders:
            pid = keys.pop(holder.name_key)
            refused[pid] = duplicate_message(unique, names[pid], holder)
        others = not_(and_(processes.c.dag_id == self.dag_id, processes.c.run_id == self.run_id))
        for claimed, p in self.repo.claims_in_flight(product_type, scope, others):
            if (pid := keys.pop(claimed, None)) is not None:
                refused[pid] = f"{unique.field} {names[pid]!r} is being claimed by process {describe(p)}"
        return refused

    def save_subscriptions(self, subs: list[SubscriptionModel]) -> tuple[list[SubscriptionModel], dict[UUID, str]]:
        """`Repository.save_subscription` for many: new ones inserted at version 1, the others updated if still at
        their version (those changed since are refused, by subscription). Returns the saved ones, new versions."""
        new = [s for s in subs if s.version == 0]
        old = {s.subscription_id: s for s in subs if s.version != 0}
        refused: dict[UUID, str] = {}
        if new:
            inserted = set(insert_ignore_many(self.conn, subscriptions, [
                {"subscription_id": s.subscription_id, "version": 1, **subscription_row(s)} for s in new],
                subscriptions.c.subscription_id))
            refused |= {s.subscription_id: f"subscription {s.subscription_id} already exists" for s in new
                        if s.subscription_id not in inserted}
        if old:
            seen = {r.subscription_id: r.version for r in self.conn.execute(
                select(subscriptions.c.subscription_id, subscriptions.c.version)
                .where(subscriptions.c.subscription_id.in_(list(old))).with_for_update())}
            refused |= {sid: f"subscription {sid} was changed by someone else since version {s.version}"
                        for sid, s in old.items() if seen.get(sid) != s.version}
            # Locked and at their version: written whole, as multi-row statements (an UPDATE a row is slower).
            upsert_many(self.conn, subscriptions, [
                {"subscription_id": sid, "version": s.version + 1, **subscription_row(s)} for sid, s in old.items()
                if sid not in refused], ["subscription_id"])
        saved = [s.model_copy(update={"version": s.version + 1}) for s in subs if s.subscription_id not in refused]
        self._save_blocks(saved)
        return saved, refused

    def _save_blocks(self, subs: list[SubscriptionModel]) -> None:
        by_table: dict[Any, list[dict[str, Any]]] = {}
        for sub in subs:
            mapping, row = block_row(sub)
            by_table.setdefault(mapping.table, []).append(row)
        for table, rows in by_table.items():
            upsert_many(self.conn, table, rows, ["subscription_id"])

    def link(self, links: list[tuple[UUID, UUID]], workflow_target: str) -> None:
        t = now()
        insert_ignore_many(self.conn, processes_subscriptions, [
            {"process_id": pid, "subscription_id": sid, "workflow_target": workflow_target, "created_at": t}
            for pid, sid in links], processes_subscriptions.c.process_id)

    def record_steps(self, rows: list[dict[str, Any]]) -> None:
        """One row per try of a task in each process (`Repository.record_step`)."""
        completed = now()
        upsert_many(self.conn, process_steps, [{"note": None, "completed_at": completed, **r} for r in rows],
                    ["process_id", "task_id", "map_index", "try_number"])

    def running(self, ids: list[UUID], task_id: str) -> None:
        """`Repository.enter_step` for many (locked already): running at `task_id` (a completed one stays so)."""
        if ids:
            self.conn.execute(update(processes).where(processes.c.process_id.in_(ids),
                                                      processes.c.status != str(ProcessStatus.COMPLETED))
                              .values(status=str(ProcessStatus.RUNNING), last_step=task_id, failed_reason=None,
                                      traceback=None, last_modified_at=now()))

    def complete(self, ids: list[UUID]) -> None:
        if ids:
            self.conn.execute(update(processes).where(processes.c.process_id.in_(ids),
                                                      processes.c.status == str(ProcessStatus.RUNNING))
                              .values(status=str(ProcessStatus.COMPLETED), last_modified_at=now()))

    def fail(self, failures: list[dict[str, Any]]) -> None:
        """`Repository.fail_process` for many: each {pid, last_step, failed_reason, traceback}."""
        if failures:
            self.conn.execute(update(processes).where(
                processes.c.process_id == bindparam("pid"), processes.c.status != str(ProcessStatus.ABORTED),
                processes.c.status != str(ProcessStatus.COMPLETED))
                .values(status=str(ProcessStatus.FAILED), last_modified_at=now()), failures)

    def stop(self, reason: str) -> None:
        """The run was stopped (marked failed): its processes still created or running fail, with `reason`."""
        self.conn.execute(update(processes).where(
            processes.c.dag_id == self.dag_id, processes.c.run_id == self.run_id,
            processes.c.status.in_([str(ProcessStatus.CREATED), str(ProcessStatus.RUNNING)]))
            .values(status=str(ProcessStatus.FAILED), failed_reason=reason, last_modified_at=now()))

    def outcome(self) -> tuple[dict[str, int], list[dict[str, Any]]]:
        """How many of the run's processes are in each status, and those not completed nor aborted (by id)."""
        counts = {r.status: r.n for r in self.conn.execute(
            select(processes.c.status, func.count().label("n"))
            .where(processes.c.dag_id == self.dag_id, processes.c.run_id == self.run_id).group_by(processes.c.status))}
        unfinished = self.conn.execute(select(processes.c.process_id, processes.c.input_state, processes.c.last_step,
                                              processes.c.failed_reason).where(
            processes.c.dag_id == self.dag_id, processes.c.run_id == self.run_id,
            processes.c.status.not_in([str(ProcessStatus.COMPLETED), str(ProcessStatus.ABORTED)]))
            .order_by(processes.c.process_id))
        return counts, [dict(r._mapping) for r in unfinished]

