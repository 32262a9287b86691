"""Pure domain model: lifecycles, product blocks, product types and their transitions."""

from usergroup.domain.blocks import UserGroupBlock, UserGroupBlockInactive, UserGroupBlockProvisioning
from usergroup.domain.errors import LifecycleError
from usergroup.domain.lifecycle import ProcessStatus, SubscriptionLifecycle, Target
from usergroup.domain.names import GroupName, check_group_name
from usergroup.domain.product import Product
from usergroup.domain.subscription import SubscriptionModel
from usergroup.domain.user import (
    USER_EXTERNAL_PRODUCT,
    USER_INTERNAL_PRODUCT,
    Affiliation,
    User,
    UserBlock,
    UserBlockInactive,
    UserBlockProvisioning,
    UserInactive,
    UserProvisioning,
)
from usergroup.domain.user_group import USER_GROUP_PRODUCT, UserGroup, UserGroupInactive, UserGroupProvisioning

__all__ = [
    "USER_EXTERNAL_PRODUCT",
    "USER_GROUP_PRODUCT",
    "USER_INTERNAL_PRODUCT",
    "Affiliation",
    "GroupName",
    "LifecycleError",
    "ProcessStatus",
    "Product",
    "SubscriptionLifecycle",
    "SubscriptionModel",
    "Target",
    "User",
    "UserBlock",
    "UserBlockInactive",
    "UserBlockProvisioning",
    "UserGroup",
    "UserGroupBlock",
    "UserGroupBlockInactive",
    "UserGroupBlockProvisioning",
    "UserGroupInactive",
    "UserGroupProvisioning",
    "UserInactive",
    "UserProvisioning",
    "check_group_name",
]
