"""The User's block in the store: `user_blocks`, its group a reference to a User Group's block (read as it is
now), its username unique per group."""

from typing import Any

from sqlalchemy import Column, ForeignKey, Integer, Select, String, Table, UniqueConstraint, Uuid, select

from usergroup.domain import SubscriptionLifecycle, SubscriptionModel
from usergroup.domain.errors import LifecycleError
from usergroup.store.mappings import ProductMapping, UniqueName
from usergroup.store.mappings.user_group import user_group_blocks
from usergroup.store.tables import OssBssIdText, metadata, subscriptions

user_blocks = Table(
    "user_blocks",
    metadata,
    Column("subscription_id", Uuid, ForeignKey(subscriptions.c.subscription_id), primary_key=True),
    # The user's group: a reference to the block of a User Group subscription (its owner), never a copy.
    # NULL until the create's initialize_subscription sets it.
    Column("group_subscription_id", Uuid, ForeignKey(user_group_blocks.c.subscription_id), index=True),
    Column("username", String(255)),
    Column("age", Integer),
    Column("user_id", OssBssIdText),
    # Usernames are unique per group among non-terminated users: the key while not terminated, else NULL.
    Column("name_key", String(1024)),
    UniqueConstraint("group_subscription_id", "name_key", name="uq_user_blocks_group_name"),
)


class UserMapping(ProductMapping):
    product_type = "User"
    block = "user"
    table = user_blocks
    unique_name = UniqueName("username", user_blocks.c.group_subscription_id, "user_group_id", "in this group")
    references = (user_blocks.c.group_subscription_id,)

    def select(self) -> Select:
        u, g = user_blocks, user_group_blocks
        return (select(u.c.subscription_id, u.c.username, u.c.age, u.c.user_id, u.c.group_subscription_id,
                       g.c.group_name, g.c.group_id)
                .outerjoin(g, g.c.subscription_id == u.c.group_subscription_id))

    def to_block(self, row: Any) -> dict[str, Any]:
        group = {"owner_subscription_id": row.group_subscription_id, "group_name": row.group_name,
                 "group_id": row.group_id}
        return {"group": group, "username": row.username, "age": row.age, "user_id": row.user_id}

    def to_row(self, sub: SubscriptionModel) -> dict[str, Any]:
        user = sub.user
        # A user refused before its group was set (left `initial`) may be terminated without one, to clean it up.
        if user.group.owner_subscription_id is None and sub.status in (SubscriptionLifecycle.PROVISIONING,
                                                                       SubscriptionLifecycle.ACTIVE):
            raise LifecycleError(f"subscription {sub.subscription_id} is {sub.status}: its user.group must be the "
                                 "block of an existing User Group subscription")
        return {"group_subscription_id": user.group.owner_subscription_id, "username": user.username,
                "age": user.age, "user_id": user.user_id}

    def scope_of(self, sub: SubscriptionModel):
        return sub.user.group.owner_subscription_id
