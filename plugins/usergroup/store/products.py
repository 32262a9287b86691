"""A product with its fixed inputs, read once per transaction."""

from typing import Any
from uuid import UUID

from sqlalchemy import Connection, select

from usergroup.domain.product import FixedInput, Product
from usergroup.store.tables import (
    fixed_inputs,
    products,
)


class Products:
    conn: Connection

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

