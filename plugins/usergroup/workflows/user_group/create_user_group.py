"""The create UserGroup workflow: its input form, its three own steps, declared once."""

from typing import Annotated
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict

from usergroup.domain import SubscriptionLifecycle, Target, UserGroupInactive, UserGroupProvisioning
from usergroup.domain.names import GROUP_NAME_RULES, GroupName
from usergroup.domain.schema import FieldSchema
from usergroup.engine.generic_steps import store_process_subscription
from usergroup.engine.step import State, StepContext, step
from usergroup.engine.workflow import create_workflow
from usergroup.ossbss.client import OSSBSS_RETRIES


class CreateUserGroupForm(BaseModel):
    """The initial input form: one string field, the name of the user group."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    group_name: Annotated[GroupName, FieldSchema("Group name", f"The name of the new user group: {GROUP_NAME_RULES}")]


@step("Create subscription", returns=("subscription", "subscription_id"))
def create_subscription(product_id: UUID, customer_id: UUID, group_name: str, process_id: UUID,
                        ctx: StepContext) -> State:
    ctx.store.claim_name("UserGroup", customer_id, group_name, process_id)
    subscription = UserGroupInactive.from_product_id(
        product_id, customer_id, subscription_id=uuid5(process_id, "subscription"))
    return {"subscription": subscription, "subscription_id": str(subscription.subscription_id)}


@step("Initialize subscription", returns=("subscription",))
def initialize_subscription(subscription: UserGroupInactive, group_name: str) -> State:
    subscription.user_group.group_name = group_name
    subscription.description = f"User Group {group_name}"
    subscription = UserGroupProvisioning.from_other_lifecycle(subscription, SubscriptionLifecycle.PROVISIONING)
    return {"subscription": subscription}


@step("Provision user group", returns=("subscription", "group_id"), **OSSBSS_RETRIES)
def provision_user_group(subscription: UserGroupProvisioning, ctx: StepContext) -> State:
    group_id = ctx.oss.provision_user_group(subscription.subscription_id, subscription.user_group.group_name)
    subscription.user_group.group_id = group_id
    return {"subscription": subscription, "group_id": group_id}


create_user_group = create_workflow(
    "create_user_group",
    description="""
### Create a User Group subscription

Runs orchestrator-core's create workflow for the **User Group** product, one task per step:
`create_subscription` → `store_process_subscription` (CREATE) → `initialize_subscription` →
`provision_user_group` → `set_status` (active) → `resync` → `done`.

Trigger it with a `group_name`. The run creates the subscription, records this run as its process,
provisions the group in the OSS/BSS and leaves the subscription **active** and **in sync**.

See the result with `usergroup subscriptions list` (or `show ID --json`); every step of the run is in
`usergroup subscriptions show ID --json` under `processes`. A failed task can be cleared (with its
downstream tasks): it resumes from the state of the last successful step.
""",
    product_type="UserGroup",
    form=CreateUserGroupForm,
    steps=[create_subscription, store_process_subscription(Target.CREATE), initialize_subscription,
           provision_user_group],
)
