"""Unique names: who holds one, and claiming them for a process (one at a time per scope)."""

from collections.abc import Iterator
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, func, not_, select

from usergroup.domain import SubscriptionModel
from usergroup.domain.names import name_key
from usergroup.store.errors import DuplicateNameError
from usergroup.store.mappings import mapping_for
from usergroup.store.processes import CLAIMING, describe
from usergroup.store.tables import (
    processes,
    subscriptions,
)


class Names:
    conn: Connection

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


def duplicate_message(unique, name: str, holder: SubscriptionModel | None) -> str:
    where = f"subscription {holder.subscription_id} ({holder.status})" if holder else "another subscription"
    return f"{unique.field} {name!r} is already used by {where} {unique.within}"

