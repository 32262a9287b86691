"""The validate User workflow: the OSS/BSS holds the user the subscription says, in its group, declared once."""

from usergroup.domain import User
from usergroup.engine.step import State, StepContext, step
from usergroup.engine.workflow import validate_workflow
from usergroup.ossbss.client import OSSBSS_RETRIES
from usergroup.workflows.fields import UserSubscriptionForm
from usergroup.workflows.user_group.validate_user_group import OssBssMismatchError


@step("Check user in OSS/BSS", **OSSBSS_RETRIES)
def check_user_in_ossbss(subscription: User, ctx: StepContext) -> State:
    """Every field is compared and every mismatch named, joined with "; ": the user's `user_id`, `username` and
    `age`; its group's `group_id` among the groups the OSS/BSS says the user is a member of (a membership of
    another group as well is not the subscription's); and that group's `group_name` (the group renamed behind our
    back leaves its users out of sync too)."""
    user, sid = subscription.user, subscription.subscription_id
    found = ctx.oss.read_user(sid)
    if found is None:
        raise OssBssMismatchError(f"user.user_id: expected {user.user_id!r}, found none: the OSS/BSS holds no user "
                                  f"for subscription {sid}")
    wrong = [f"user.{field}: expected {expected!r}, found {found[field]!r}"
             for field in ("user_id", "username", "age") if (expected := getattr(user, field)) != found[field]]
    groups = {g["group_id"]: g["group_name"] for g in found["groups"]}
    group = user.group
    if group.group_id not in groups:
        wrong.append(f"user.group.group_id: expected {group.group_id!r}, found {list(groups)!r} (the groups the "
                     "user is a member of)")
    elif groups[group.group_id] != group.group_name:
        wrong.append(f"user.group.group_name: expected {group.group_name!r}, found {groups[group.group_id]!r}")
    if wrong:
        raise OssBssMismatchError(f"{'; '.join(wrong)} in the OSS/BSS for subscription {sid}")
    return {}


validate_user = validate_workflow(
    "validate_user",
    description="""
### Validate a User against the OSS/BSS

Runs orchestrator-core's validate workflow for the **User** products, one task per step:
`store_process_subscription` (VALIDATE) → `unsync` → `check_user_in_ossbss` → `resync` → `done`.

Trigger it with a `subscription_id` (an **active** User in sync). It passes if the OSS/BSS holds a user with the
subscription's `user_id`, `username` and `age`, a member of the group with its group's `group_id` and `group_name`
(a group renamed behind our back fails its users too). A mismatch fails `check_user_in_ossbss`, naming each field,
the expected and the found value, and leaves the subscription **out of sync** until an operator acts: repair the
OSS/BSS and clear the failed task, or abort the process (`usergroup processes abort`) and set the subscription in
sync (`usergroup subscriptions set-in-sync`). `validate_users` runs it every night.
""",
    product_type="User",
    form=UserSubscriptionForm,
    steps=[check_user_in_ossbss],
)
