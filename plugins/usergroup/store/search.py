"""The subscriptions page's search: filtered, searched and paged in SQL."""

import functools
import re
from uuid import UUID

from sqlalchemy import Connection, String, cast, func, or_, select

from usergroup.domain import ProcessStatus, SubscriptionModel
from usergroup.store.mappings import mappings
from usergroup.store.tables import (
    processes,
    processes_subscriptions,
    products,
    subscriptions,
)


class Search:
    conn: Connection

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


def equal(table, values: dict[str, str | None]) -> list | None:
    """`column == value` for each value given; None if one holds NUL (no row holds one, PostgreSQL takes none)."""
    given = {k: v for k, v in values.items() if v is not None}
    if any("\x00" in v for v in given.values()):
        return None
    return [table.c[k] == v for k, v in given.items()]

