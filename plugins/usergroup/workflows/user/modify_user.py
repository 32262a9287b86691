"""The modify User workflow (username, age; the group stays), declared once."""

from typing import Annotated
from uuid import UUID

from usergroup.domain import User
from usergroup.domain.names import USERNAME_RULES, Username
from usergroup.domain.schema import FieldSchema
from usergroup.engine.step import State, StepContext, step
from usergroup.engine.workflow import modify_workflow
from usergroup.ossbss.client import OSSBSS_RETRIES
from usergroup.workflows.fields import Age, UserSubscriptionForm


class ModifyUserForm(UserSubscriptionForm):
    username: Annotated[Username, FieldSchema("Username", f"The user's new name: {USERNAME_RULES}")]
    age: Age = None


@step("Check the new username is free", returns=("user_group_id",))
def check_username(subscription_id: UUID, username: str, process_id: UUID, ctx: StepContext) -> State:
    """Refused at the first task if another user of the group has the username, or another unfinished process
    asks for it there."""
    group = ctx.store.get_subscription(subscription_id).user.group.owner_subscription_id
    ctx.store.claim_name("User", group, username, process_id, subscription_id)
    return {"user_group_id": str(group)}


@step("Modify user subscription", returns=("subscription",), **OSSBSS_RETRIES)
def modify_user_subscription(subscription: User, user_group_id: UUID, username: str, process_id: UUID,
                             ctx: StepContext, age: int | None = None) -> State:
    """Update the user in the OSS/BSS (a retry changes nothing twice), then in the subscription. An age not given
    stays as it is."""
    ctx.store.claim_name("User", user_group_id, username, process_id, subscription.subscription_id)
    user = subscription.user
    age = user.age if age is None else age
    ctx.oss.update_user(subscription.subscription_id, username, age)
    user.username, user.age = username, age
    subscription.description = f"User {username} from group {user.group.group_name} ({subscription.affiliation})"
    return {"subscription": subscription}


modify_user = modify_workflow(
    "modify_user",
    description="""
### Modify a User

Runs orchestrator-core's modify workflow for the **User** products, one task per step:
`store_process_subscription` (MODIFY) → `unsync` → `modify_user_subscription` → `resync` → `done`.

Trigger it with a `subscription_id` (an **active** User in sync), the new `username` (unique among the group's
users) and optionally a new `age` (not given: it stays). The group stays. Give `version` to be sure nobody
changed the subscription since you looked at it.
""",
    product_type="User",
    form=ModifyUserForm,
    steps=[modify_user_subscription],
    checks=(check_username,),
)
