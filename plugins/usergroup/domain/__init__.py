"""Pure domain model: lifecycles, product blocks, product types and their transitions."""

from usergroup.domain.blocks import UserGroupBlock, UserGroupBlockInactive, UserGroupBlockProvisioning
from usergroup.domain.errors import LifecycleError
from usergroup.domain.lifecycle import ProcessStatus, SubscriptionLifecycle, Target
from usergroup.domain.names import GroupName, check_group_name
from usergroup.domain.product import USER_GROUP_PRODUCT, Product
from usergroup.domain.subscription import SubscriptionModel
from usergroup.domain.user_group import UserGroup, UserGroupInactive, UserGroupProvisioning

__all__ = [
    "USER_GROUP_PRODUCT",
    "GroupName",
    "LifecycleError",
    "ProcessStatus",
    "Product",
    "SubscriptionLifecycle",
    "SubscriptionModel",
    "Target",
    "UserGroup",
    "UserGroupBlock",
    "UserGroupBlockInactive",
    "UserGroupBlockProvisioning",
    "UserGroupInactive",
    "UserGroupProvisioning",
    "check_group_name",
]
