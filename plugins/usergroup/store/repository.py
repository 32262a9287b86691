"""The repository: every operation the steps, the adapter and the CLI need, on one connection."""

import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, String, cast, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from usergroup.domain import ProcessStatus, SubscriptionLifecycle, SubscriptionModel, Target
from usergroup.domain.names import name_key
from usergroup.domain.product import FixedInput, Product
from usergroup.domain.rules import WORKFLOW_LIFECYCLES, in_use_message, out_of_sync
from usergroup.domain.subscription import SUBSCRIPTION_MODEL_REGISTRY
from usergroup.store.mappings import mapping_for, mappings
from usergroup.store.sql import insert_ignore, upsert
from usergroup.store.tables import (
    fixed_inputs,
    process_steps,
    processes,
    processes_subscriptions,
    products,
    subscriptions,
)


class StoreError(RuntimeError):
    """A write the store refused; the message says why."""


class DuplicateNameError(StoreError):
    """A name (a group's, a user's) another subscription in its scope holds, or another process asks for."""


class StaleSubscriptionError(StoreError):
    pass


class RefusedError(StoreError):
    """A workflow may not act on the subscription (now): the process will not go on, it is aborted."""


class OutOfSyncError(RefusedError):
    pass


class ProcessAbortedError(StoreError):
    pass


UNFINISHED = (ProcessStatus.CREATED, ProcessStatus.RUNNING, ProcessStatus.FAILED)
# Processes whose claims count: those whose first task has run (one the API opened is `created` until then, and
# claims nothing: of concurrent runs the first whose first task claims the name wins).
CLAIMING = (ProcessStatus.RUNNING, ProcessStatus.FAILED)


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

    @contextmanager
    def rolled_back(self) -> Iterator["Repository"]:
        """A repository whose writes are undone: to ask what a step would refuse, changing nothing."""
        with self.engine.connect() as conn, conn.begin() as tx:
            yield Repository(conn)
            tx.rollback()


class Repository:
    def __init__(self, conn: Connection):
        self.conn = conn
        self._products: dict[UUID, Product] | None = None

    # -- subscriptions ---------------------------------------------------------------------------

    def products(self) -> dict[UUID, Product]:
        """Every product with its fixed inputs, read once per transaction."""
        if self._products is None:
            rows = self.conn.execute(select(products, fixed_inputs.c.name.label("fixed_name"), fixed_inputs.c.value)
                                     .outerjoin(fixed_inputs, fixed_inputs.c.product_id == products.c.product_id)
                                     .order_by(fixed_inputs.c.name))
            found: dict[UUID, dict[str, Any]] = {}
            for r in rows:
                product = found.setdefault(r.product_id, {c.name: getattr(r, c.name) for c in products.c
                                                          if c.name != "created_at"} | {"fixed_inputs": []})
                if r.fixed_name is not None:
                    product["fixed_inputs"].append(FixedInput(name=r.fixed_name, value=r.value))
            self._products = {pid: Product.model_validate(p) for pid, p in found.items()}
        return self._products

    def _to_models(self, rows, every: bool = False) -> list[SubscriptionModel]:
        """Subscription rows as their models: each product type's blocks loaded in one query, with the blocks
        they refer to as they are now (of `every` subscription, or those of the rows, selected by id)."""
        rows, known = list(rows), self.products()
        by_type: dict[str, list[Any]] = {}
        for r in rows:
            by_type.setdefault(known[r.product_id].product_type, []).append(r.subscription_id)
        blocks: dict[UUID, dict[str, Any]] = {}
        for product_type, ids in by_type.items():
            mapping = mapping_for(product_type)
            query = mapping.select()
            if not every:
                query = query.where(mapping.table.c.subscription_id.in_(ids))
            blocks.update({b.subscription_id: {mapping.block: mapping.to_block(b)} for b in self.conn.execute(query)})
        models = []
        for r in rows:
            product = known[r.product_id]
            data = {c.name: getattr(r, c.name) for c in subscriptions.c if c.name != "product_id"}
            data.update({f.name: f.value for f in product.fixed_inputs}, product=product)
            model = SUBSCRIPTION_MODEL_REGISTRY[product.name].type_for(r.status)
            models.append(model.model_validate(data | blocks.get(r.subscription_id, {})))
        return models

    def get_subscription(self, subscription_id: UUID | str) -> SubscriptionModel | None:
        rows = self.conn.execute(select(subscriptions)
                                 .where(subscriptions.c.subscription_id == UUID(str(subscription_id)))).all()
        return self._to_models(rows)[0] if rows else None

    def product_of(self, subscription_id: UUID | str) -> Product | None:
        """The product of a subscription (without loading its product blocks), or None if there is none."""
        product_id = self.conn.execute(select(subscriptions.c.product_id).where(
            subscriptions.c.subscription_id == UUID(str(subscription_id)))).scalar()
        return self.products()[product_id] if product_id else None

    def list_subscriptions(self) -> list[SubscriptionModel]:
        rows = self.conn.execute(select(subscriptions).order_by(subscriptions.c.start_date,
                                                                subscriptions.c.subscription_id))
        return self._to_models(rows, every=True)

    def page_subscriptions(self, *, query: str = "", product_id: UUID | None = None, status: str | None = None,
                           insync: bool | None = None, sort: str = "start_date", descending: bool = True,
                           offset: int = 0, limit: int | None = None) -> tuple[list[SubscriptionModel], int]:
        """One page of the subscriptions whose description, product name, status, blocks' text (that of the blocks
        they refer to included), id or customer contain every word of `query` (case ignored), filtered and sorted
        in SQL, and how many match in all."""
        words = query.replace("\x00", "").lower().split()  # NUL: no text holds it, PostgreSQL takes none
        found = select(subscriptions).join(products, products.c.product_id == subscriptions.c.product_id)
        parts = [subscriptions.c.description, products.c.name, subscriptions.c.status]
        for mapping in mappings().values() if words else ():  # the blocks' values, those referred to included
            block = mapping.select().subquery()
            found = found.outerjoin(block, block.c.subscription_id == subscriptions.c.subscription_id)
            parts += [func.coalesce(c, "") for c in block.c if isinstance(c.type, String)]
        text = func.lower(functools.reduce(lambda a, b: a + " " + b, parts))
        ids = func.replace(cast(subscriptions.c.subscription_id, String) + " "  # SQLite keeps them without dashes
                           + cast(subscriptions.c.customer_id, String), "-", "")
        where = [or_(text.contains(w, autoescape=True), *([ids.contains(w.replace("-", ""), autoescape=True)]
                                                           if re.fullmatch(r"[0-9a-f-]*[0-9a-f]{4}[0-9a-f-]*", w)
                                                           else []))
                 for w in words]  # ids are read as text only for words that look like a part of one
        where += [c == v for c, v in ((subscriptions.c.product_id, product_id), (subscriptions.c.status, status),
                                      (subscriptions.c.insync, insync)) if v is not None]
        order = [subscriptions.c[sort], subscriptions.c.subscription_id]  # start_date: in the order of its index
        found = found.where(*where).order_by(*(c.desc() if descending else c for c in order))
        count = select(func.count()).select_from(found.with_only_columns(subscriptions.c.subscription_id)
                                                 .order_by(None).subquery())
        if not words:  # the page from the index, the count apart
            rows = self.conn.execute(found.offset(offset).limit(limit)).all()
            return self._to_models(rows), self.conn.execute(count).scalar_one()
        rows = self.conn.execute(found.add_columns(func.count().over().label("total"))  # one scan for both
                                 .offset(offset).limit(limit)).all()
        total = rows[0].total if rows else 0 if not offset else self.conn.execute(count).scalar_one()  # past the end
        return self._to_models(rows), total

    def with_failed_process(self, ids: list[UUID]) -> set[UUID]:
        """Those of `ids` a failed process holds."""
        rows = self.conn.execute(
            select(processes_subscriptions.c.subscription_id).distinct()
            .join(processes, processes.c.process_id == processes_subscriptions.c.process_id)
            .where(processes_subscriptions.c.subscription_id.in_(ids),
                   processes.c.status == str(ProcessStatus.FAILED)))
        return {r.subscription_id for r in rows}

    def find_by_name(self, product_type: str, scope: UUID | str, name: str) -> SubscriptionModel | None:
        """The non-terminated subscription of `product_type` holding `name` in `scope` (a customer's groups, a
        group's users), compared by `name_key` (without case, look-alikes folded)."""
        mapping = mapping_for(product_type)
        unique, table = mapping.unique_name, mapping.table
        found = self.conn.execute(select(table.c.subscription_id).where(
            unique.scope == UUID(str(scope)), table.c.name_key == name_key(name))).scalar()
        return self.get_subscription(found) if found else None

    def claim_name(self, product_type: str, scope: UUID | str, name: str, process_id: UUID | str,
                   subscription_id: UUID | str | None = None) -> None:
        """Refuse `name` if another non-terminated subscription of `product_type` holds it in `scope` (a rename of
        `subscription_id` may change the case of its own name), or another unfinished process (a create or a
        modify) asks for that name in that scope. Claims in one scope are serialized (a transaction lock on
        PostgreSQL; SQLite's BEGIN IMMEDIATE serializes all writers), so of two concurrent runs with one name
        exactly one passes; the process row committed with this step is the claim others then see."""
        unique = mapping_for(product_type).unique_name
        self.lock_names(product_type, scope)
        holder = self.find_by_name(product_type, scope, name)
        if holder is not None and str(holder.subscription_id) != str(subscription_id):
            raise DuplicateNameError(duplicate_message(unique, name, holder))
        key, me = name_key(name), UUID(str(process_id))
        for claimed, p in self.claims_in_flight(product_type, scope):
            if p["process_id"] != me and claimed == key:
                raise DuplicateNameError(f"{unique.field} {name!r} is being claimed by process {describe(p)}")

    def lock_names(self, product_type: str, scope: UUID | str) -> None:
        """Serialize the claims of names in one scope until this transaction ends (PostgreSQL; SQLite's BEGIN
        IMMEDIATE serializes all writers)."""
        if self.conn.dialect.name == "postgresql":
            lock = f"usergroup.names.{product_type}.{scope}"
            self.conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(lock))))

    def claims_in_flight(self, product_type: str, scope: UUID | str, *where: Any) -> Iterator[tuple[str, dict]]:
        """The `name_key` each unfinished process (of those `where` selects) asks for in `scope`, with the process."""
        unique = mapping_for(product_type).unique_name
        for p in self.conn.execute(select(processes).where(processes.c.status.in_(CLAIMING), *where)).mappings():
            given = p["input_state"] or {}
            if given.get(unique.scope_input) == str(scope) and isinstance(given.get(unique.field), str):
                yield name_key(given[unique.field]), p

    def lock_in_sync(self, subscription_id: UUID | str, product_type: str) -> SubscriptionModel:
        """The subscription, if it is an active `product_type` in sync, locked until this transaction ends against
        a workflow taking it (its `unsync` waits, then sees what this transaction did: a block now referring to
        it). Otherwise RefusedError saying why."""
        sid = UUID(str(subscription_id))
        found = self.conn.execute(select(subscriptions.c.subscription_id).where(subscriptions.c.subscription_id == sid)
                                  .with_for_update(read=True)).first()
        sub = self.get_subscription(sid) if found else None
        if sub is None or sub.product.product_type != product_type:
            raise RefusedError(f"no {product_type} subscription {sid}" if sub is None else
                               f"subscription {sid} is a {sub.product.name}, not a {product_type}")
        if sub.status != SubscriptionLifecycle.ACTIVE:
            raise RefusedError(f"subscription {sid} is {sub.status}: only an active {sub.product.name} can be used")
        if not sub.insync:
            raise OutOfSyncError(out_of_sync(sid, self.holders(sid)))
        return sub

    def in_use_by(self, subscription_id: UUID | str) -> list[str]:
        """The non-terminated subscriptions whose blocks refer to a block of this one, described."""
        return [f"{r.subscription_id} ({r.description})" for r in self.used_by(subscription_id)]

    def used_by(self, subscription_id: UUID | str) -> list[Any]:
        """The non-terminated subscriptions whose blocks refer to a block of this one (id, description)."""
        sid, found = UUID(str(subscription_id)), []
        for mapping in mappings().values():
            for column in mapping.references:
                found += self.conn.execute(
                    select(subscriptions.c.subscription_id, subscriptions.c.description)
                    .join(mapping.table, mapping.table.c.subscription_id == subscriptions.c.subscription_id)
                    .where(column == sid, subscriptions.c.status != str(SubscriptionLifecycle.TERMINATED))
                    .order_by(subscriptions.c.subscription_id)).all()
        return found

    def active_in_sync(self, product_type: str) -> list[UUID]:
        """The ids of the product type's active subscriptions in sync (what a nightly validation checks)."""
        rows = self.conn.execute(
            select(subscriptions.c.subscription_id).join(products, products.c.product_id == subscriptions.c.product_id)
            .where(products.c.product_type == product_type,
                   subscriptions.c.status == str(SubscriptionLifecycle.ACTIVE), subscriptions.c.insync.is_(True))
            .order_by(subscriptions.c.start_date, subscriptions.c.subscription_id))
        return [r.subscription_id for r in rows]

    def save_subscription(self, sub: SubscriptionModel) -> SubscriptionModel:
        """Insert (version 0) or update (optimistic lock on `version`); return it with its new version."""
        values = subscription_row(sub)
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
            if target == Target.TERMINATE and (users := self.in_use_by(subscription_id)):
                raise RefusedError(in_use_message(subscription_id, users))  # rolls the unsync back
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
                               f"by process {', '.join(map(describe, changer)) or 'unknown'}: trigger again to act "
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
            names = ", ".join(describe(p) for p in holders)
            raise OutOfSyncError(f"subscription {subscription_id} stays out of sync: process {names} has not "
                                 "completed; resume it (clear its failed task) or abort it first")
        if sub.status in (SubscriptionLifecycle.INITIAL, SubscriptionLifecycle.PROVISIONING):
            raise StoreError(f"subscription {subscription_id} is {sub.status}: its create did not complete, so it "
                             "cannot be set in sync; resume the create, or clean it up with its terminate workflow "
                             "(`usergroup subscriptions workflows ID` names it)")
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
        return [describe(p) for p in holders]

    def refusal_context(self, sub: SubscriptionModel) -> dict[str, Any]:
        """What the workflow rules (`domain.rules.refusal`) need to know of `sub` beyond the subscription itself."""
        return {"holders": self.holders(sub.subscription_id) if not sub.insync else [],
                "failed_create": self.failed_create(sub) is not None, "in_use_by": self.in_use_by(sub.subscription_id)}

    def _save_block(self, sub: SubscriptionModel) -> None:
        mapping, values = block_row(sub)
        try:
            with self.conn.begin_nested():
                upsert(self.conn, mapping.table, values, ["subscription_id"])
        except IntegrityError:
            if (unique := mapping.unique_name) is None or (scope := mapping.scope_of(sub)) is None:
                raise
            name = getattr(getattr(sub, mapping.block), unique.field)
            holder = self.find_by_name(mapping.product_type, scope, name)
            raise DuplicateNameError(duplicate_message(unique, name, holder)) from None

    # -- processes -------------------------------------------------------------------------------

    def start_process(self, process_id: UUID, *, workflow_name: str, workflow_target: str, dag_id: str,
                      run_id: str, created_by: str | None, input_state: dict[str, Any], map_index: int = -1) -> None:
        """Create the process row, `created` (idempotent: a second call leaves the first row as it is, but the
        first task's state replaces the input of a row that is still `created`: one the API opened)."""
        t = now()
        if not insert_ignore(self.conn, processes, {
            "process_id": process_id, "workflow_name": workflow_name, "workflow_target": workflow_target,
            "status": str(ProcessStatus.CREATED), "dag_id": dag_id, "run_id": run_id, "map_index": map_index,
            "created_by": created_by, "input_state": input_state, "started_at": t, "last_modified_at": t,
        }):
            self.conn.execute(update(processes).where(processes.c.process_id == process_id,
                                                      processes.c.status == str(ProcessStatus.CREATED))
                              .values(input_state=input_state))

    def enter_step(self, process_id: UUID, task_id: str) -> None:
        """Lock the process row for this step's transaction (a second live try of the task waits here, then
        finds the first one's commit), refuse an aborted process, and mark it running at `task_id` (a completed
        process, whose tasks were cleared, stays completed)."""
        # One statement on the way of every step: the UPDATE locks the row as SELECT ... FOR UPDATE would.
        if self.conn.execute(
            update(processes)
            .where(processes.c.process_id == process_id,
                   processes.c.status.not_in([str(ProcessStatus.ABORTED), str(ProcessStatus.COMPLETED)]))
            .values(status=str(ProcessStatus.RUNNING), last_step=task_id, failed_reason=None, traceback=None,
                    last_modified_at=now())).rowcount:
            return
        process = self.conn.execute(select(processes.c.status, processes.c.failed_reason)
                                    .where(processes.c.process_id == process_id).with_for_update()).first()
        if process is None:
            raise StoreError(f"no process {process_id}: its first task has not run")
        if process.status == ProcessStatus.ABORTED:
            raise ProcessAbortedError(f"process {process_id} was aborted ({process.failed_reason}): none of its "
                                      "steps runs any more")

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

    def resume_process(self, process_id: UUID) -> None:
        """`failed` -> `running`: its failed task was cleared and runs again."""
        self.conn.execute(update(processes).where(processes.c.process_id == process_id,
                                                  processes.c.status == str(ProcessStatus.FAILED))
                          .values(status=str(ProcessStatus.RUNNING), last_modified_at=now()))

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

    def get_process(self, process_id: UUID | str, lock: bool = False) -> dict[str, Any] | None:
        """The process row; `lock` holds it until the transaction ends (as a step's transaction does)."""
        query = select(processes).where(processes.c.process_id == UUID(str(process_id)))
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        return dict(row._mapping) if row else None

    def list_processes(self, *, order: list[tuple[str, bool]] = (("started_at", False),), offset: int = 0,
                       limit: int | None = None, **where: str | None) -> list[dict[str, Any]]:
        """The processes whose columns equal the values given (those not None: dag_id, run_id, status, ...), in
        `order` ((column, descending), the first the primary)."""
        conditions = _equal(processes, where)
        if conditions is None:
            return []
        query = select(processes).where(*conditions).order_by(
            *(processes.c[k].desc() if desc else processes.c[k] for k, desc in order), processes.c.process_id)
        return [dict(r._mapping) for r in self.conn.execute(query.offset(offset).limit(limit))]

    def count_processes(self, **where: str | None) -> int:
        conditions = _equal(processes, where)
        return 0 if conditions is None else self.conn.execute(
            select(func.count()).select_from(processes).where(*conditions)).scalar_one()

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


def subscription_row(sub: SubscriptionModel) -> dict[str, Any]:
    """The subscription's columns but its id and version."""
    return {"product_id": sub.product.product_id, "customer_id": sub.customer_id, "description": sub.description,
            "status": str(sub.status), "insync": sub.insync, "start_date": sub.start_date, "end_date": sub.end_date,
            "note": sub.note}


def block_row(sub: SubscriptionModel) -> tuple[Any, dict[str, Any]]:
    """The subscription's product mapping and its block's row, with the `name_key` it claims (none once
    terminated)."""
    mapping = mapping_for(sub.product.product_type)
    values = {"subscription_id": sub.subscription_id, **mapping.to_row(sub)}
    if (unique := mapping.unique_name) is not None:
        name = getattr(getattr(sub, mapping.block), unique.field)
        claimed = name is not None and sub.status != SubscriptionLifecycle.TERMINATED
        values["name_key"] = name_key(name) if claimed else None
    return mapping, values


def _equal(table, values: dict[str, str | None]) -> list | None:
    """`column == value` for each value given; None if one holds NUL (no row holds one, PostgreSQL takes none)."""
    given = {k: v for k, v in values.items() if v is not None}
    if any("\x00" in v for v in given.values()):
        return None
    return [table.c[k] == v for k, v in given.items()]


def describe(process: dict[str, Any]) -> str:
    return f"{process['process_id']} ({process['workflow_name']}, {process['status']})"


def duplicate_message(unique, name: str, holder: SubscriptionModel | None) -> str:
    where = f"subscription {holder.subscription_id} ({holder.status})" if holder else "another subscription"
    return f"{unique.field} {name!r} is already used by {where} {unique.within}"
