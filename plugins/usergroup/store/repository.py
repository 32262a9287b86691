"""The repository: every operation the steps, the adapter and the CLI need, on one connection."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from usergroup.domain import ProcessStatus, SubscriptionLifecycle, SubscriptionModel, Target, UserGroupInactive
from usergroup.domain.names import name_key
from usergroup.domain.product import Product
from usergroup.domain.rules import WORKFLOW_LIFECYCLES, out_of_sync
from usergroup.store.sql import insert_ignore, upsert
from usergroup.store.tables import (
    process_steps,
    processes,
    processes_subscriptions,
    products,
    subscriptions,
    user_group_blocks,
)


class StoreError(RuntimeError):
    """A write the store refused; the message says why."""


class DuplicateGroupNameError(StoreError):
    pass


class StaleSubscriptionError(StoreError):
    pass


class RefusedError(StoreError):
    """A workflow may not act on the subscription (now): the process will not go on, it is aborted."""


class OutOfSyncError(RefusedError):
    pass


class ProcessAbortedError(StoreError):
    pass


UNFINISHED = (ProcessStatus.CREATED, ProcessStatus.RUNNING, ProcessStatus.FAILED)


def now() -> datetime:
    return datetime.now(UTC)


class Store:
    """The store behind one engine. `transaction()` is the unit of work: one repository, one commit."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @contextmanager
    def transaction(self) -> Iterator["Repository"]:
        with self.engine.begin() as conn:
            yield Repository(conn)


class Repository:
    def __init__(self, conn: Connection):
        self.conn = conn

    # -- subscriptions ---------------------------------------------------------------------------

    def _subscription_query(self):
        return (
            select(subscriptions, user_group_blocks.c.group_name, user_group_blocks.c.group_id,
                   products.c.name.label("product_name"), products.c.description.label("product_description"),
                   products.c.product_type, products.c.tag, products.c.status.label("product_status"))
            .join(products, products.c.product_id == subscriptions.c.product_id)
            .outerjoin(user_group_blocks, user_group_blocks.c.subscription_id == subscriptions.c.subscription_id)
        )

    @staticmethod
    def _to_model(row) -> SubscriptionModel:
        m = row._mapping
        product = Product(product_id=m["product_id"], name=m["product_name"], description=m["product_description"],
                          product_type=m["product_type"], tag=m["tag"], status=m["product_status"])
        data = {c.name: m[c.name] for c in subscriptions.c if c.name != "product_id"}
        data.update(product=product, user_group={"group_name": m["group_name"], "group_id": m["group_id"]})
        return UserGroupInactive.type_for(m["status"]).model_validate(data)

    def get_subscription(self, subscription_id: UUID | str) -> SubscriptionModel | None:
        row = self.conn.execute(
            self._subscription_query().where(subscriptions.c.subscription_id == UUID(str(subscription_id)))
        ).first()
        return self._to_model(row) if row else None

    def product_of(self, subscription_id: UUID | str) -> Product | None:
        """The product of a subscription (without loading its product blocks), or None if there is none."""
        row = self.conn.execute(
            select(products).join(subscriptions, subscriptions.c.product_id == products.c.product_id)
            .where(subscriptions.c.subscription_id == UUID(str(subscription_id)))).first()
        return Product.model_validate(row._mapping, from_attributes=False) if row else None

    def list_subscriptions(self) -> list[SubscriptionModel]:
        rows = self.conn.execute(self._subscription_query().order_by(subscriptions.c.start_date,
                                                                     subscriptions.c.subscription_id))
        return [self._to_model(r) for r in rows]

    def find_by_group_name(self, customer_id: UUID | str, group_name: str) -> SubscriptionModel | None:
        """The customer's non-terminated subscription holding `group_name`, compared without case."""
        row = self.conn.execute(self._subscription_query().where(
            user_group_blocks.c.customer_id == UUID(str(customer_id)),
            user_group_blocks.c.name_key == name_key(group_name),
        )).first()
        return self._to_model(row) if row else None

    def claim_group_name(self, customer_id: UUID | str, group_name: str, process_id: UUID | str,
                         subscription_id: UUID | str | None = None) -> None:
        """Refuse `group_name` if another non-terminated subscription of the customer holds it (a rename of
        `subscription_id` may change the case of its own name), or another unfinished process (a create or a
        modify) asks for that name. Claims of one customer are serialized (a transaction lock on PostgreSQL;
        SQLite's BEGIN IMMEDIATE serializes all writers), so of two concurrent runs with one name exactly one
        passes; the process row committed with this step is the claim others then see."""
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"usergroup.names.{customer_id}"))))
        holder = self.find_by_group_name(customer_id, group_name)
        if holder is not None and str(holder.subscription_id) != str(subscription_id):
            raise DuplicateGroupNameError(duplicate_message(group_name, holder))
        key, me = name_key(group_name), UUID(str(process_id))
        in_flight = self.conn.execute(select(processes).where(processes.c.status.in_(UNFINISHED)))
        for p in in_flight.mappings():
            given = p["input_state"] or {}
            if (p["process_id"] != me and given.get("customer_id") == str(customer_id)
                    and isinstance(given.get("group_name"), str) and name_key(given["group_name"]) == key):
                raise DuplicateGroupNameError(f"group_name {group_name!r} is being claimed by process {_describe(p)}")

    def active_in_sync(self, product_name: str) -> list[UUID]:
        """The ids of the product's active subscriptions that are in sync (what a nightly validation checks)."""
        rows = self.conn.execute(
            select(subscriptions.c.subscription_id).join(products, products.c.product_id == subscriptions.c.product_id)
            .where(products.c.name == product_name, subscriptions.c.status == str(SubscriptionLifecycle.ACTIVE),
                   subscriptions.c.insync.is_(True))
            .order_by(subscriptions.c.start_date, subscriptions.c.subscription_id))
        return [r.subscription_id for r in rows]

    def save_subscription(self, sub: SubscriptionModel) -> SubscriptionModel:
        """Insert (version 0) or update (optimistic lock on `version`); return it with its new version."""
        values = {
            "product_id": sub.product.product_id, "customer_id": sub.customer_id,
            "description": sub.description, "status": str(sub.status), "insync": sub.insync,
            "start_date": sub.start_date, "end_date": sub.end_date, "note": sub.note,
        }
        if sub.version == 0:
            try:
                with self.conn.begin_nested():
                    self.conn.execute(insert(subscriptions).values(
                        subscription_id=sub.subscription_id, version=1, **values))
            except IntegrityError:
                raise StaleSubscriptionError(f"subscription {sub.subscription_id} already exists") from None
            version = 1
        else:
            result = self.conn.execute(
                update(subscriptions)
                .where(subscriptions.c.subscription_id == sub.subscription_id,
                       subscriptions.c.version == sub.version)
                .values(version=subscriptions.c.version + 1, **values)
            )
            if result.rowcount != 1:
                raise StaleSubscriptionError(
                    f"subscription {sub.subscription_id} was changed by someone else since version {sub.version}"
                )
            version = sub.version + 1
        self._save_block(sub)
        return sub.model_copy(update={"version": version})

    def unsync(self, subscription_id: UUID, process_id: UUID, target: Target,
               seen_version: int | None = None) -> SubscriptionModel:
        """Take the in-sync lock for a workflow of `target`: one conditional UPDATE (in sync, in a lifecycle state
        the target may start from and, if given, still at the version the process's first task checked), so of
        any number of concurrent callers exactly one wins, and a workflow never acts on a subscription another
        one has changed since it looked (e.g. terminated, renamed). A loser learns which process holds it or
        changed it.

        A terminate also takes a subscription left `initial` or `provisioning` by a create that failed or was
        aborted (out of sync, held by that dead create): the create is aborted, so clearing it runs nothing;
        of concurrent takers the first one wins."""
        allowed = [str(s) for s in WORKFLOW_LIFECYCLES[target]]
        unchanged = [] if seen_version is None else [subscriptions.c.version == seen_version]
        taken = self.conn.execute(
            update(subscriptions)
            .where(subscriptions.c.subscription_id == subscription_id, subscriptions.c.insync.is_(True),
                   subscriptions.c.status.in_(allowed), *unchanged)
            .values(insync=False, version=subscriptions.c.version + 1)
        ).rowcount
        if taken:
            return self.get_subscription(subscription_id)
        sub = self.get_subscription(subscription_id)
        if sub is None:
            raise StoreError(f"no subscription {subscription_id}")
        if target == Target.TERMINATE and (create := self.failed_create(sub, exclude=process_id)) is not None:
            if self._bump(sub):
                self.abort_process(create["process_id"], f"given up: its subscription is terminated by process "
                                                         f"{process_id}")
                return self.get_subscription(subscription_id)
        elif sub.insync and sub.status not in allowed:
            raise RefusedError(f"subscription {subscription_id} is {sub.status}: a {target} workflow needs it "
                               f"{' or '.join(allowed)}")
        elif sub.insync:
            others = [p for p in self.processes_of(subscription_id) if p["process_id"] != process_id]
            changer = ([p for p in others if self.completed_step(p["process_id"], "unsync")] or others)[-1:]
            since = f" (version {seen_version} then, {sub.version} now)" if seen_version is not None else ""
            raise RefusedError(f"subscription {subscription_id} changed since this process checked it{since}, last "
                               f"by process {', '.join(map(_describe, changer)) or 'unknown'}: trigger again to act "
                               "on it as it is now")
        raise OutOfSyncError(out_of_sync(subscription_id, self.holders(subscription_id, exclude=process_id)))

    def failed_create(self, sub: SubscriptionModel, exclude: UUID | None = None) -> dict[str, Any] | None:
        """The create that left `sub` initial or provisioning and then failed or was aborted, if that is what
        holds it (no other process but `exclude` has taken it: unfinished, past its `unsync`)."""
        if sub.status not in (SubscriptionLifecycle.INITIAL, SubscriptionLifecycle.PROVISIONING):
            return None
        linked = self.processes_of(sub.subscription_id)
        creates = [p for p in linked if p["link_target"] == "CREATE"]
        others = [p for p in linked if p["link_target"] != "CREATE" and p["status"] in UNFINISHED
                  and p["process_id"] != exclude and self.completed_step(p["process_id"], "unsync")]
        if len(creates) != 1 or others or creates[0]["status"] not in (ProcessStatus.FAILED, ProcessStatus.ABORTED):
            return None
        return creates[0]

    def _bump(self, sub: SubscriptionModel) -> bool:
        """Take a subscription a dead create left behind: of concurrent takers, the first one wins."""
        return self.conn.execute(
            update(subscriptions)
            .where(subscriptions.c.subscription_id == sub.subscription_id, subscriptions.c.version == sub.version)
            .values(insync=False, version=subscriptions.c.version + 1)).rowcount == 1

    def set_in_sync(self, subscription_id: UUID) -> tuple[SubscriptionModel, bool]:
        """The operator's recovery: refused while a linked process is failed or running (it holds the lock).
        Returns the subscription and whether it changed (one already in sync is left as it is)."""
        sub = self.get_subscription(subscription_id)
        if sub is None:
            raise StoreError(f"no subscription {subscription_id}")
        holders = self.unfinished_processes(subscription_id)
        if holders:
            names = ", ".join(_describe(p) for p in holders)
            raise OutOfSyncError(f"subscription {subscription_id} stays out of sync: process {names} has not "
                                 "completed; resume it (clear its failed task) or abort it first")
        if sub.status in (SubscriptionLifecycle.INITIAL, SubscriptionLifecycle.PROVISIONING):
            raise StoreError(f"subscription {subscription_id} is {sub.status}: its create did not complete, so it "
                             "cannot be set in sync; resume the create, or clean it up with terminate_user_group")
        changed = self.conn.execute(
            update(subscriptions)
            .where(subscriptions.c.subscription_id == subscription_id, subscriptions.c.insync.is_(False))
            .values(insync=True, version=subscriptions.c.version + 1)).rowcount
        return self.get_subscription(subscription_id), bool(changed)

    def unfinished_processes(self, subscription_id: UUID, exclude: UUID | None = None) -> list[dict[str, Any]]:
        return [p for p in self.processes_of(subscription_id)
                if p["status"] in UNFINISHED and p["process_id"] != exclude]

    def holders(self, subscription_id: UUID, exclude: UUID | None = None) -> list[str]:
        """The unfinished processes holding the subscription (those past their `unsync`, else any), described."""
        holders = self.unfinished_processes(subscription_id, exclude=exclude)
        holders = [p for p in holders if self.completed_step(p["process_id"], "unsync")] or holders
        return [_describe(p) for p in holders]

    def refusal_context(self, sub: SubscriptionModel) -> dict[str, Any]:
        """What the workflow rules (`domain.rules.refusal`) need to know of `sub` beyond the subscription itself."""
        return {"holders": self.holders(sub.subscription_id) if not sub.insync else [],
                "failed_create": self.failed_create(sub) is not None, "in_use_by": []}

    def _save_block(self, sub: SubscriptionModel) -> None:
        block = sub.user_group
        claimed = block.group_name is not None and sub.status != SubscriptionLifecycle.TERMINATED
        values = {"group_name": block.group_name, "group_id": block.group_id, "customer_id": sub.customer_id,
                  "name_key": name_key(block.group_name) if claimed else None}
        try:
            with self.conn.begin_nested():
                upsert(self.conn, user_group_blocks, {"subscription_id": sub.subscription_id, **values},
                        ["subscription_id"])
        except IntegrityError:
            holder = self.find_by_group_name(sub.customer_id, block.group_name)
            raise DuplicateGroupNameError(duplicate_message(block.group_name, holder)) from None

    # -- processes -------------------------------------------------------------------------------

    def start_process(self, process_id: UUID, *, workflow_name: str, workflow_target: str, dag_id: str,
                      run_id: str, created_by: str | None, input_state: dict[str, Any], map_index: int = -1) -> None:
        """Create the process row, `created` (idempotent: a second call leaves the first row as it is)."""
        t = now()
        insert_ignore(self.conn, processes, {
            "process_id": process_id, "workflow_name": workflow_name, "workflow_target": workflow_target,
            "status": str(ProcessStatus.CREATED), "dag_id": dag_id, "run_id": run_id, "map_index": map_index,
            "created_by": created_by, "input_state": input_state, "started_at": t, "last_modified_at": t,
        })

    def enter_step(self, process_id: UUID, task_id: str) -> None:
        """Lock the process row for this step's transaction (a second live try of the task waits here, then
        finds the first one's commit), refuse an aborted process, and mark it running at `task_id` (a completed
        process, whose tasks were cleared, stays completed)."""
        process = self.conn.execute(select(processes.c.status, processes.c.failed_reason)
                                    .where(processes.c.process_id == process_id).with_for_update()).first()
        if process is None:
            raise StoreError(f"no process {process_id}: its first task has not run")
        if process.status == ProcessStatus.ABORTED:
            raise ProcessAbortedError(f"process {process_id} was aborted ({process.failed_reason}): none of its "
                                      "steps runs any more")
        if process.status != ProcessStatus.COMPLETED:
            self.conn.execute(update(processes).where(processes.c.process_id == process_id).values(
                status=str(ProcessStatus.RUNNING), last_step=task_id, failed_reason=None, traceback=None,
                last_modified_at=now()))

    def complete_process(self, process_id: UUID) -> None:
        """`running` -> `completed`; from any other status it is refused."""
        completed = self.conn.execute(
            update(processes)
            .where(processes.c.process_id == process_id, processes.c.status == str(ProcessStatus.RUNNING))
            .values(status=str(ProcessStatus.COMPLETED), last_modified_at=now())
        ).rowcount
        if not completed:
            process = self.get_process(process_id)
            raise StoreError(f"process {process_id} is {process['status'] if process else 'missing'}: only a "
                             "running process can complete")

    def fail_process(self, process_id: UUID, status: ProcessStatus, *, last_step: str, failed_reason: str,
                     traceback: str | None = None) -> None:
        """Record why the process stopped (`failed` or `aborted`); an aborted or completed one keeps its status."""
        self.conn.execute(
            update(processes)
            .where(processes.c.process_id == process_id,
                   processes.c.status.not_in([str(ProcessStatus.ABORTED), str(ProcessStatus.COMPLETED)]))
            .values(status=str(status), last_step=last_step, failed_reason=failed_reason, traceback=traceback,
                    last_modified_at=now()))

    def abort_process(self, process_id: UUID, reason: str) -> None:
        """The operator's word that a process will not go on: from then on none of its steps runs. Aborting an
        aborted process again records the new reason; a completed process cannot be aborted."""
        aborted = self.conn.execute(
            update(processes)
            .where(processes.c.process_id == process_id,
                   processes.c.status.in_([*UNFINISHED, ProcessStatus.ABORTED]))
            .values(status=str(ProcessStatus.ABORTED), failed_reason=reason, last_modified_at=now())
        ).rowcount
        if not aborted:
            process = self.get_process(process_id)
            if process is None:
                raise StoreError(f"no process {process_id}")
            raise StoreError(f"process {process_id} is {process['status']}: only an unfinished process can be "
                             "aborted")

    def get_process(self, process_id: UUID | str) -> dict[str, Any] | None:
        row = self.conn.execute(select(processes).where(processes.c.process_id == UUID(str(process_id)))).first()
        return dict(row._mapping) if row else None

    def list_processes(self, *, dag_id: str | None = None, run_id: str | None = None,
                       status: str | None = None) -> list[dict[str, Any]]:
        query = select(processes).order_by(processes.c.started_at, processes.c.process_id)
        if dag_id is not None:
            query = query.where(processes.c.dag_id == dag_id)
        if run_id is not None:
            query = query.where(processes.c.run_id == run_id)
        if status is not None:
            query = query.where(processes.c.status == status)
        return [dict(r._mapping) for r in self.conn.execute(query)]

    def subscriptions_of(self, process_id: UUID | str) -> list[UUID]:
        rows = self.conn.execute(select(processes_subscriptions.c.subscription_id)
                                 .where(processes_subscriptions.c.process_id == UUID(str(process_id))))
        return [r.subscription_id for r in rows]

    def link_subscription(self, process_id: UUID, subscription_id: UUID, workflow_target: str) -> None:
        insert_ignore(self.conn, processes_subscriptions, {
            "process_id": process_id, "subscription_id": subscription_id,
            "workflow_target": workflow_target, "created_at": now(),
        })

    def processes_of(self, subscription_id: UUID | str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(processes, processes_subscriptions.c.workflow_target.label("link_target"))
            .join(processes_subscriptions, processes_subscriptions.c.process_id == processes.c.process_id)
            .where(processes_subscriptions.c.subscription_id == UUID(str(subscription_id)))
            .order_by(processes.c.started_at)
        )
        return [dict(r._mapping) for r in rows]

    # -- steps -----------------------------------------------------------------------------------

    def record_step(self, process_id: UUID, name: str, *, task_id: str, map_index: int = -1, status: str,
                    try_number: int, state: dict[str, Any] | None, error: str | None, started_at: datetime,
                    note: str | None = None, hostname: str | None = None) -> None:
        """One row per try of a task (`task_id`, `map_index`) running the step `name`; recording the same try
        again replaces it."""
        upsert(self.conn, process_steps, {
            "process_id": process_id, "name": name, "task_id": task_id, "map_index": map_index, "status": status,
            "try_number": try_number, "state": state, "error": error, "note": note, "hostname": hostname,
            "started_at": started_at, "completed_at": now(),
        }, ["process_id", "task_id", "map_index", "try_number"])

    def record_step_failure(self, process_id: UUID, name: str, *, task_id: str, map_index: int = -1,
                            try_number: int, error: str, started_at: datetime, hostname: str | None = None) -> bool:
        """Record a failed try. If this try had already committed (it crashed after its commit), its success
        stands and only the error is added: returns False. Otherwise returns True."""
        committed = self.conn.execute(
            update(process_steps)
            .where(process_steps.c.process_id == process_id, process_steps.c.task_id == task_id,
                   process_steps.c.map_index == map_index, process_steps.c.try_number == try_number,
                   process_steps.c.status == "success")
            .values(error=error, note="crashed after its commit")
        ).rowcount
        if not committed:
            self.record_step(process_id, name, task_id=task_id, map_index=map_index, status="failed",
                             try_number=try_number, state=None, error=error, started_at=started_at,
                             hostname=hostname)
        return not committed

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

    def count(self, table) -> int:
        return self.conn.execute(select(func.count()).select_from(table)).scalar_one()


def _describe(process: dict[str, Any]) -> str:
    return f"{process['process_id']} ({process['workflow_name']}, {process['status']})"


def duplicate_message(group_name: str, holder: SubscriptionModel | None) -> str:
    where = f"subscription {holder.subscription_id} ({holder.status})" if holder else "another subscription"
    return f"group_name {group_name!r} is already used by {where} of this customer"
