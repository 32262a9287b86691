"""The validate UserGroup workflow: the OSS/BSS holds the group the subscription says, declared once."""

from usergroup.domain import UserGroup
from usergroup.engine.step import State, StepContext, step
from usergroup.engine.workflow import validate_workflow
from usergroup.ossbss.client import OSSBSS_RETRIES
from usergroup.ossbss.errors import PermanentError
from usergroup.workflows.fields import SubscriptionForm


class OssBssMismatchError(PermanentError):
    """The OSS/BSS disagrees with the subscription: no retry cures it, an operator acts."""


@step("Check user group in OSS/BSS", **OSSBSS_RETRIES)
def check_user_group_in_ossbss(subscription: UserGroup, ctx: StepContext) -> State:
    block, sid = subscription.user_group, subscription.subscription_id
    found = ctx.oss.read_user_group(sid)
    if found is None:
        raise OssBssMismatchError(f"group_id: expected {block.group_id}, found none: the OSS/BSS holds no group for "
                              f"subscription {sid}")
    for field in ("group_id", "group_name"):
        if (expected := getattr(block, field)) != found[field]:
            raise OssBssMismatchError(f"{field}: expected {expected!r}, found {found[field]!r} in the OSS/BSS for "
                                  f"subscription {sid}")
    return {}


validate_user_group = validate_workflow(
    "validate_user_group",
    description="""
### Validate a User Group against the OSS/BSS

Runs orchestrator-core's validate workflow for the **User Group** product, one task per step:
`store_process_subscription` (VALIDATE) → `unsync` → `check_user_group_in_ossbss` → `resync` → `done`.

Trigger it with a `subscription_id` (an **active** User Group in sync). It passes if the OSS/BSS holds a group
with the subscription's `group_id` and `group_name`. A mismatch fails `check_user_group_in_ossbss`, naming
the field, the expected and the found value, and leaves the subscription **out of sync** until an operator
acts: repair the OSS/BSS and clear the failed task, or abort the process (`usergroup processes abort`) and
set the subscription in sync (`usergroup subscriptions set-in-sync`). `validate_user_groups` runs it every night.
""",
    product_type="UserGroup",
    form=SubscriptionForm,
    steps=[check_user_group_in_ossbss],
)
