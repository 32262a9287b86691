"""The User Group product types, one per lifecycle (orchestrator-core's product_types/user_group.py)."""

from usergroup.domain.blocks import UserGroupBlock, UserGroupBlockInactive, UserGroupBlockProvisioning
from usergroup.domain.lifecycle import SubscriptionLifecycle
from usergroup.domain.subscription import SUBSCRIPTION_MODEL_REGISTRY, SubscriptionModel


class UserGroupInactive(SubscriptionModel, is_base=True, lifecycle=[SubscriptionLifecycle.INITIAL]):
    user_group: UserGroupBlockInactive


class UserGroupProvisioning(UserGroupInactive, lifecycle=[SubscriptionLifecycle.PROVISIONING]):
    user_group: UserGroupBlockProvisioning


class UserGroup(UserGroupProvisioning, lifecycle=[SubscriptionLifecycle.ACTIVE]):
    user_group: UserGroupBlock


SUBSCRIPTION_MODEL_REGISTRY["User Group"] = UserGroupInactive
