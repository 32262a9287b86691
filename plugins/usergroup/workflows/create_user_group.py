"""The create UserGroup workflow: its input form, its three custom steps and the step list."""

from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict

from usergroup.domain import (
    SubscriptionLifecycle,
    Target,
    UserGroupInactive,
    UserGroupProvisioning,
)
from usergroup.domain.names import GroupName
from usergroup.provisioning import OssBssClient
from usergroup.step import State, step
from usergroup.steps import done, resync, set_status, store_process_subscription


class CreateUserGroupForm(BaseModel):
    """The initial input form: one string field, the name of the user group."""

    model_config = ConfigDict(extra="forbid")

    group_name: GroupName


@step("Create subscription")
def create_subscription(product_id: UUID, customer_id: UUID, group_name: str, process_id: UUID,
                        repository) -> State:
    repository.claim_group_name(customer_id, group_name, process_id)
    subscription = UserGroupInactive.from_product_id(
        product_id, customer_id, subscription_id=uuid5(UUID(str(process_id)), "subscription")
    )
    return {"subscription": subscription, "subscription_id": str(subscription.subscription_id)}


@step("Initialize subscription")
def initialize_subscription(subscription: UserGroupInactive, group_name: str) -> State:
    subscription.user_group.group_name = group_name
    subscription.description = f"User Group {group_name}"
    subscription = UserGroupProvisioning.from_other_lifecycle(subscription, SubscriptionLifecycle.PROVISIONING)
    return {"subscription": subscription}


@step("Provision user group")
def provision_user_group(subscription: UserGroupProvisioning, oss: OssBssClient) -> State:
    group_id = oss.provision_user_group(subscription.subscription_id, subscription.user_group.group_name)
    subscription.user_group.group_id = group_id
    return {"subscription": subscription, "group_id": group_id}


TARGET = Target.CREATE

STEPS = [
    create_subscription,
    store_process_subscription(Target.CREATE),
    initialize_subscription,
    provision_user_group,
    set_status(SubscriptionLifecycle.ACTIVE),
    resync,
    done,
]
