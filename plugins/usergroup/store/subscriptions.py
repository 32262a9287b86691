"""Subscriptions: read as their lifecycle's model, saved with their block, and what uses them."""

from typing import Any
from uuid import UUID

from sqlalchemy import Connection, func, select, update
from sqlalchemy.exc import IntegrityError

from usergroup.domain import ProcessStatus, SubscriptionLifecycle, SubscriptionModel
from usergroup.domain.names import name_key
from usergroup.domain.product import Product
from usergroup.domain.subscription import SUBSCRIPTION_MODEL_REGISTRY
from usergroup.store.errors import DuplicateNameError, StaleSubscriptionError
from usergroup.store.mappings import mapping_for, mappings
from usergroup.store.names import duplicate_message
from usergroup.store.processes import UNFINISHED
from usergroup.store.sql import insert_ignore_many, upsert_many
from usergroup.store.tables import (
    products,
    subscriptions,
)


class Subscriptions:
    conn: Connection

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

    def _bump(self, sub: SubscriptionModel) -> bool:
        """Take a subscription a dead create left behind: of concurrent takers, the first one wins."""
        return self.conn.execute(
            update(subscriptions)
            .where(subscriptions.c.subscription_id == sub.subscription_id, subscriptions.c.version == sub.version)
            .values(insync=False, version=subscriptions.c.version + 1)).rowcount == 1

    def active_in_sync(self, product_type: str) -> list[UUID]:
        """The ids of the product type's active subscriptions in sync (what a nightly validation checks)."""
        rows = self.conn.execute(
            select(subscriptions.c.subscription_id).join(products, products.c.product_id == subscriptions.c.product_id)
            .where(products.c.product_type == product_type,
                   subscriptions.c.status == str(SubscriptionLifecycle.ACTIVE), subscriptions.c.insync.is_(True))
            .order_by(subscriptions.c.start_date, subscriptions.c.subscription_id))
        return [r.subscription_id for r in rows]

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

