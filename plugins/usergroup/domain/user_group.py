"""The User Group product and its product types, one per lifecycle (orchestrator-core's product_types/user_group.py)."""

from uuid import UUID

from usergroup.domain.blocks import UserGroupBlock, UserGroupBlockInactive, UserGroupBlockProvisioning
from usergroup.domain.lifecycle import SubscriptionLifecycle
from usergroup.domain.product import Product
from usergroup.domain.subscription import SubscriptionModel, register

USER_GROUP_PRODUCT = Product(
    product_id=UUID("6b3c3a1e-5d0f-4e43-9a2f-2f1e0a8b7c01"),
    name="User Group",
    description="User Group",
    product_type="UserGroup",
    tag="GROUP",
)


class UserGroupInactive(SubscriptionModel, is_base=True, lifecycle=[SubscriptionLifecycle.INITIAL]):
    user_group: UserGroupBlockInactive


class UserGroupProvisioning(UserGroupInactive, lifecycle=[SubscriptionLifecycle.PROVISIONING]):
    user_group: UserGroupBlockProvisioning


class UserGroup(UserGroupProvisioning, lifecycle=[SubscriptionLifecycle.ACTIVE]):
    user_group: UserGroupBlock


register(UserGroupInactive, USER_GROUP_PRODUCT)
