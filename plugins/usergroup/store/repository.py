"""The repository: every operation the steps, the adapter and the CLI need, on one connection."""

import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, String, and_, bindparam, cast, func, not_, or_, select, update
from sqlalchemy.exc import IntegrityError

from usergroup.domain import ProcessStatus, SubscriptionLifecycle, SubscriptionModel, Target
from usergroup.domain.names import name_key
from usergroup.domain.product import FixedInput, Product
from usergroup.domain.rules import WORKFLOW_LIFECYCLES, in_use_message, out_of_sync
from usergroup.domain.subscription import SUBSCRIPTION_MODEL_REGISTRY
from usergroup.store.mappings import mapping_for, mappings
from usergroup.store.sql import insert_ignore_many, upsert_many
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
FINAL = (str(ProcessStatus.ABORTED), str(ProcessStatus.COMPLETED))  # a process that ended keeps its status


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
        """`claim_names` for one process: DuplicateNameError saying why, if refused."""
        own = {UUID(str(process_id)): UUID(str(subscription_id))} if subscription_id is not None else {}
        if refused := self.claim_names(product_type, scope, {UUID(str(process_id)): name}, own):
            raise DuplicateNameError(next(iter(refused.values())))

    def claim_names(self, product_type: str, scope: UUID | str, names: dict[UUID, str],
                    own: dict[UUID, UUID] | None = None, run: tuple[str, str] | None = None) -> dict[UUID, str]:
        """Why each process's name may not be claimed in `scope` (a customer's groups, a group's users), by process:
        another non-terminated subscription of `product_type` holds it (a rename of the process's `own`
        subscription may change the case of its own name), or another unfinished process (not of `run`) asks for
        it: of `names` that ask for one name, the first claims it (a bulk run's own repeats are refused before,
        naming their items: `batch.item_states`). Names are
        compared by `name_key` (without case, look-alikes folded). Claims in one scope are serialized (a
        transaction lock on PostgreSQL; SQLite's BEGIN IMMEDIATE serializes all writers), so of two concurrent
        claims of one name exactly one passes; the process row committed with the step is the claim others see."""
        unique, table = mapping_for(product_type).unique_name, mapping_for(product_type).table
        own, scope = own or {}, UUID(str(scope))
        self.lock_names(product_type, scope)
        keys: dict[str, UUID] = {}
        refused: dict[UUID, str] = {}
        for pid, name in names.items():
            if (first := keys.setdefault(name_key(name), pid)) != pid:
                refused[pid] = f"{unique.field} {name!r} is being claimed by process {first}"
        holders = self.conn.execute(
            select(table.c.name_key, subscriptions.c.subscription_id, subscriptions.c.status)
            .join(subscriptions, subscriptions.c.subscription_id == table.c.subscription_id)
            .where(unique.scope == scope, table.c.name_key.in_(list(keys))))
        for holder in holders:
            pid = keys[holder.name_key]
            if own.get(pid) != holder.subscription_id:
                del keys[holder.name_key]
                refused[pid] = duplicate_message(unique, names[pid], holder)
        others = [processes.c.process_id.not_in(list(names))]
        if run is not None:
            others.append(not_(and_(processes.c.dag_id == run[0], processes.c.run_id == run[1])))
        for claimed, p in self.claims_in_flight(product_type, scope, *others):
            if (pid := keys.pop(claimed, None)) is not None:
                refused[pid] = f"{unique.field} {names[pid]!r} is being claimed by process {describe(p)}"
        return refused

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
        """`save_subscriptions` of one: StaleSubscriptionError (or DuplicateNameError) if refused."""
        saved, refused = self.save_subscriptions([sub])
        if refused:
            raise StaleSubscriptionError(refused[sub.subscription_id])
        return saved[0]

    def save_subscriptions(self, subs: list[SubscriptionModel]) -> tuple[list[SubscriptionModel], dict[UUID, str]]:
        """Insert the new ones (version 0) at version 1, update the others if still at their version (optimistic
        locking: one changed since is refused). Returns those saved, with their new versions, and why each other
        one was refused, by subscription. A block whose name another subscription holds breaks the unique index:
        DuplicateNameError for a single subscription, IntegrityError for the caller to split many."""
        new = [s for s in subs if s.version == 0]
        old = {s.subscription_id: s for s in subs if s.version != 0}
        refused: dict[UUID, str] = {}
        if new:
            inserted = set(insert_ignore_many(self.conn, subscriptions, [
                {"subscription_id": s.subscription_id, "version": 1, **subscription_row(s)} for s in new],
                subscriptions.c.subscription_id))
            refused |= {s.subscription_id: f"subscription {s.subscription_id} already exists" for s in new
                        if s.subscription_id not in inserted}
        if len(old) == 1:  # one conditional UPDATE
            (sid, s), = old.items()
            if self.conn.execute(update(subscriptions).where(subscriptions.c.subscription_id == sid,
                                                             subscriptions.c.version == s.version)
                                 .values(version=subscriptions.c.version + 1, **subscription_row(s))).rowcount != 1:
                refused[sid] = f"subscription {sid} was changed by someone else since version {s.version}"
        elif old:  # locked and compared, then written whole as multi-row statements (an UPDATE a row is slower)
            seen = {r.subscription_id: r.version for r in self.conn.execute(
                select(subscriptions.c.subscription_id, subscriptions.c.version)
                .where(subscriptions.c.subscription_id.in_(list(old))).with_for_update())}
            refused |= {sid: f"subscription {sid} was changed by someone else since version {s.version}"
                        for sid, s in old.items() if seen.get(sid) != s.version}
            upsert_many(self.conn, subscriptions, [
                {"subscription_id": sid, "version": s.version + 1, **subscription_row(s)} for sid, s in old.items()
                if sid not in refused], ["subscription_id"])
        saved = [s.model_copy(update={"version": s.version + 1}) for s in subs if s.subscription_id not in refused]
        self._save_blocks(saved)
        return saved, refused

    def _save_blocks(self, subs: list[SubscriptionModel]) -> None:
        by_table: dict[Any, tuple[Any, list[dict[str, Any]]]] = {}
        for sub in subs:
            mapping, row = block_row(sub)
            by_table.setdefault(mapping.table, (mapping, []))[1].append(row)
        for table, (mapping, rows) in by_table.items():
            try:
                with self.conn.begin_nested():
                    upsert_many(self.conn, table, rows, ["subscription_id"])
            except IntegrityError:
                if len(subs) != 1 or (unique := mapping.unique_name) is None or \
                        (scope := mapping.scope_of(subs[0])) is None:
                    raise
                name = getattr(getattr(subs[0], mapping.block), unique.field)
                holder = self.find_by_name(mapping.product_type, scope, name)
                raise DuplicateNameError(duplicate_message(unique, name, holder)) from None

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

    # -- processes -------------------------------------------------------------------------------

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
        finds the first one's commit), each with its status, failed_reason and input_state, the try that
        committed `task_id` (`done_try`) with the state it left (`done_state`), and the state the `previous` task
        left (`previous_state`). With `enter`, those not ended are marked running at `task_id` by the statement
        that locks them."""
        found: dict[UUID, SimpleNamespace] = {}
        if enter:
            entered = self.conn.execute(self._running(ids, task_id).returning(processes.c.process_id)).scalars()
            found = {pid: SimpleNamespace(status=str(ProcessStatus.RUNNING), failed_reason=None, input_state=None)
                     for pid in entered}
        if rest := [pid for pid in ids if pid not in found]:
            rows = self.conn.execute(select(processes.c.process_id, processes.c.status, processes.c.failed_reason,
                                            processes.c.input_state)
                                     .where(processes.c.process_id.in_(rest)).with_for_update())
            found |= {r.process_id: SimpleNamespace(status=r.status, failed_reason=r.failed_reason,
                                                    input_state=r.input_state) for r in rows}
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

    def run_chunk(self, dag_id: str, run_id: str, after: UUID | None, limit: int) -> list[UUID]:
        """The ids of the run's next `limit` processes after `after`, in id order."""
        query = select(processes.c.process_id).where(processes.c.dag_id == dag_id, processes.c.run_id == run_id)
        if after is not None:
            query = query.where(processes.c.process_id > after)
        return list(self.conn.execute(query.order_by(processes.c.process_id).limit(limit)).scalars())

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
                                 .values(status=str(ProcessStatus.COMPLETED), last_modified_at=now())).rowcount \
            if ids else 0

    def resume_process(self, process_id: UUID) -> None:
        """`failed` -> `running`: its failed task was cleared and runs again."""
        self.conn.execute(update(processes).where(processes.c.process_id == process_id,
                                                  processes.c.status == str(ProcessStatus.FAILED))
                          .values(status=str(ProcessStatus.RUNNING), last_modified_at=now()))

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
                              .values(status=str(status), last_modified_at=now()), failures)

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

    def stop_run(self, dag_id: str, run_id: str, reason: str) -> None:
        """The run was stopped (marked failed): its processes still created or running fail, with `reason`."""
        self.conn.execute(update(processes).where(
            processes.c.dag_id == dag_id, processes.c.run_id == run_id,
            processes.c.status.in_([str(ProcessStatus.CREATED), str(ProcessStatus.RUNNING)]))
            .values(status=str(ProcessStatus.FAILED), failed_reason=reason, last_modified_at=now()))

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

    # -- steps -----------------------------------------------------------------------------------

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
