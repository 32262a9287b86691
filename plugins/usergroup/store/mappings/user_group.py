"""The User Group's block in the store: `user_group_blocks`, its name unique per customer."""

from typing import Any

from sqlalchemy import Column, ForeignKey, Select, String, Table, UniqueConstraint, Uuid, select

from usergroup.domain import SubscriptionModel
from usergroup.store.mappings import ProductMapping, UniqueName
from usergroup.store.tables import OssBssIdText, metadata, subscriptions

user_group_blocks = Table(
    "user_group_blocks",
    metadata,
    Column("subscription_id", Uuid, ForeignKey(subscriptions.c.subscription_id), primary_key=True),
    Column("group_name", String(255)),
    Column("group_id", OssBssIdText),
    # Uniqueness of names per customer, case-insensitive, among non-terminated subscriptions:
    # name_key is the case-folded name while the subscription is not terminated, else NULL.
    Column("customer_id", Uuid, nullable=False),
    Column("name_key", String(1024)),
    UniqueConstraint("customer_id", "name_key", name="uq_user_group_blocks_customer_name"),
)


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
