"""Each product type's store mapping, one module each: its block table, how a block is loaded and saved, the
name it keeps unique and the other subscriptions' blocks it refers to. `mapping_for` finds them."""

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar
from uuid import UUID

from sqlalchemy import Column, Select, Table

from usergroup.domain import SubscriptionModel


@dataclass(frozen=True)
class UniqueName:
    """A block field whose name is unique within a scope among non-terminated subscriptions (compared by
    `domain.names.name_key`, kept in the table's `name_key` column)."""

    field: str  # the block's field: group_name, username
    scope: Column  # the block table's column holding the scope: customer_id, group_subscription_id
    scope_input: str  # the workflow input naming the scope: customer_id, user_group_id
    within: str  # "of this customer", "in this group": for messages


class ProductMapping:
    """How the subscriptions of one product type keep their block: one row per subscription in `table` (keyed by
    `subscription_id`), loaded with what it refers to, saved without it (a reference is never copied)."""

    product_type: ClassVar[str]
    block: ClassVar[str]  # the subscription's block field, and its key in the subscription's JSON
    table: ClassVar[Table]
    unique_name: ClassVar[UniqueName | None] = None
    references: ClassVar[tuple[Column, ...]] = ()  # columns naming the owner subscription of a block referred to

    def select(self) -> Select:
        """The block rows (with `subscription_id`), joined with the blocks they refer to."""
        raise NotImplementedError

    def to_block(self, row: Any) -> dict[str, Any]:
        raise NotImplementedError

    def to_row(self, sub: SubscriptionModel) -> dict[str, Any]:
        """The block's row, without `subscription_id` and `name_key`."""
        raise NotImplementedError

    def scope_of(self, sub: SubscriptionModel) -> UUID | None:
        """The scope in which the subscription's name is unique."""
        return None


@cache
def mappings() -> dict[str, ProductMapping]:
    found: dict[str, ProductMapping] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, ProductMapping) and value is not ProductMapping:
                found[value.product_type] = value()
    return found


def mapping_for(product_type: str) -> ProductMapping:
    try:
        return mappings()[product_type]
    except KeyError:
        raise LookupError(f"no store mapping for product type {product_type!r}") from None
