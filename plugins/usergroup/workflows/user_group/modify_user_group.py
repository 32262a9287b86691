"""The modify UserGroup workflow (rename the group): its input form, its check and its own step, declared once."""

from typing import Annotated
from uuid import UUID

from usergroup.domain import UserGroup
from usergroup.domain.names import GROUP_NAME_RULES, GroupName
from usergroup.domain.schema import FieldSchema
from usergroup.engine.step import State, StepContext, step
from usergroup.engine.workflow import modify_workflow
from usergroup.ossbss.client import OSSBSS_RETRIES
from usergroup.workflows.fields import SubscriptionForm


class ModifyUserGroupForm(SubscriptionForm):
    group_name: Annotated[GroupName, FieldSchema("New group name", f"The group's new name: {GROUP_NAME_RULES}")]


@step("Check the new name is free")
def check_group_name(subscription_id: UUID, customer_id: UUID, group_name: str, process_id: UUID,
                     ctx: StepContext) -> State:
    """Refused at the first task if another group of the customer has the name, or another unfinished process
    asks for it; from this task's commit on, this process is the claim others see."""
    ctx.store.claim_name("UserGroup", customer_id, group_name, process_id, subscription_id)
    return {}


@step("Modify user group subscription", returns=("subscription", "previous_group_name"), **OSSBSS_RETRIES)
def modify_user_group_subscription(subscription: UserGroup, customer_id: UUID, group_name: str, process_id: UUID,
                                   ctx: StepContext) -> State:
    """Rename the group in the OSS/BSS (a retry renames nothing twice), then in the subscription. The name is
    claimed again under the customer's lock, so nothing took it since the first task."""
    ctx.store.claim_name("UserGroup", customer_id, group_name, process_id, subscription.subscription_id)
    previous = subscription.user_group.group_name
    ctx.oss.rename_user_group(subscription.subscription_id, group_name)
    subscription.user_group.group_name = group_name
    subscription.description = f"User Group {group_name}"
    return {"subscription": subscription, "previous_group_name": previous}


modify_user_group = modify_workflow(
    "modify_user_group",
    description="""
### Rename a User Group

Runs orchestrator-core's modify workflow for the **User Group** product, one task per step:
`store_process_subscription` (MODIFY) → `unsync` → `modify_user_group_subscription` → `resync` → `done`.

Trigger it with a `subscription_id` (an **active** User Group in sync) and the new `group_name` (the rules of
create; a change of case of its own name is fine, a name another group of the customer has is refused).
The OSS/BSS renames the group; the subscription's name and description follow. Give `version` to be sure
nobody changed the subscription since you looked at it.
""",
    product_type="UserGroup",
    form=ModifyUserGroupForm,
    steps=[modify_user_group_subscription],
    checks=(check_group_name,),
)
