"""The User Group's block in the store: `user_group_blocks`, its name unique per customer."""

from typing import Any

from sqlalchemy import Select, select

from usergroup.domain import SubscriptionModel
from usergroup.store.mappings import ProductMapping, UniqueName
from usergroup.store.tables import user_group_blocks


class UserGroupMapping(ProductMapping):
    product_type = "UserGroup"
    block = "user_group"
    table = user_group_blocks
    unique_name = UniqueName("group_name", user_group_blocks.c.customer_id, "customer_id", "of this customer")

    def select(self) -> Select:
        t = user_group_blocks
        return select(t.c.subscription_id, t.c.group_name, t.c.group_id)

    def to_block(self, row: Any) -> dict[str, Any]:
        return {"owner_subscription_id": row.subscription_id, "group_name": row.group_name, "group_id": row.group_id}

    def to_row(self, sub: SubscriptionModel) -> dict[str, Any]:
        return {"group_name": sub.user_group.group_name, "group_id": sub.user_group.group_id,
                "customer_id": sub.customer_id}

    def scope_of(self, sub: SubscriptionModel):
        return sub.customer_id
