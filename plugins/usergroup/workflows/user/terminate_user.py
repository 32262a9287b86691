"""The terminate User workflow: deprovision the user, declared once."""

from uuid import UUID

from usergroup.engine.step import State, StepContext, step
from usergroup.engine.workflow import terminate_workflow
from usergroup.ossbss.client import OSSBSS_RETRIES
from usergroup.workflows.fields import UserSubscriptionForm


@step("Deprovision user", returns=("deprovisioned",), **OSSBSS_RETRIES)
def deprovision_user(subscription_id: UUID, ctx: StepContext) -> State:
    """Remove whatever the OSS/BSS holds for the subscription (a user a stopped create made too)."""
    return {"deprovisioned": ctx.oss.deprovision_user(subscription_id)}


terminate_user = terminate_workflow(
    "terminate_user",
    description="""
### Terminate a User subscription

Runs orchestrator-core's terminate workflow for the **User** products, one task per step:
`store_process_subscription` (TERMINATE) → `unsync` → `deprovision_user` → `set_status` (terminated) →
`resync` → `done`.

Trigger it with a `subscription_id`: an **active** User in sync, or one whose create failed or was aborted.
The OSS/BSS removes the user, the subscription ends **terminated**, its username is free in the group, and
the group no longer counts it as a user (a group is terminated only when none of its users is left).
""",
    product_type="User",
    form=UserSubscriptionForm,
    steps=[deprovision_user],
)
