"""The terminate UserGroup workflow: its input form and its own step (deprovision), declared once."""

from uuid import UUID

from usergroup.engine.step import State, StepContext, step
from usergroup.engine.workflow import terminate_workflow
from usergroup.ossbss.client import OSSBSS_RETRIES
from usergroup.workflows.fields import SubscriptionForm


@step("Deprovision user group", returns=("deprovisioned",), **OSSBSS_RETRIES)
def deprovision_user_group(subscription_id: UUID, ctx: StepContext) -> State:
    """Remove whatever the OSS/BSS holds for the subscription (a group a stopped create made too)."""
    return {"deprovisioned": ctx.oss.deprovision_user_group(subscription_id)}


terminate_user_group = terminate_workflow(
    "terminate_user_group",
    description="""
### Terminate a User Group subscription

Runs orchestrator-core's terminate workflow for the **User Group** product, one task per step:
`store_process_subscription` (TERMINATE) → `unsync` → `deprovision_user_group` → `set_status` (terminated)
→ `resync` → `done`.

Trigger it with a `subscription_id`: an **active** User Group in sync, or one whose create failed or was
aborted (left `initial` or `provisioning`: the clean-up of a create given up). It is refused while a User
not terminated uses the group, naming those users (terminate them first). The OSS/BSS removes the group,
the subscription ends **terminated** (with its `end_date`) and its name is free again. Give `version` to be
sure nobody changed the subscription since you looked at it.
""",
    product_type="UserGroup",
    form=SubscriptionForm,
    steps=[deprovision_user_group],
)
