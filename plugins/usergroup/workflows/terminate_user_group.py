"""The terminate UserGroup workflow: its input form, its check, its own step (deprovision), declared once."""

from datetime import timedelta
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from usergroup.domain import SubscriptionLifecycle, SubscriptionModel, UserGroupInactive
from usergroup.provisioning import OssBssClient
from usergroup.step import State, step
from usergroup.store.repository import OutOfSyncError, StoreError
from usergroup.workflow import terminate_workflow

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class TerminateUserGroupForm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subscription_id: UUID
    version: int | None = Field(default=None, ge=1)


@step("Check the subscription can be terminated")
def check_terminate(subscription_id: UUID, repository, version: int | None = None) -> State:
    """An active User Group in sync, or one a create left `initial`/`provisioning` and then failed or was aborted
    (the clean-up). The customer and product are the subscription's own."""
    sub = repository.get_subscription(subscription_id)
    if sub is None:
        raise StoreError(f"no subscription {subscription_id}")
    if not isinstance(sub, UserGroupInactive):
        raise StoreError(f"subscription {subscription_id} is a {sub.product.name}, not a User Group")
    if version is not None and version != sub.version:
        raise StoreError(f"stale data: given version {version} does not match the current version {sub.version}")
    if sub.status == SubscriptionLifecycle.ACTIVE:
        if not sub.insync:
            raise OutOfSyncError(f"subscription {subscription_id} is out of sync"
                                 + repository.held_by(subscription_id, exclude=None))
    elif repository.failed_create(sub) is None:
        raise StoreError(refusal(sub))
    return {"customer_id": str(sub.customer_id), "product_id": str(sub.product.product_id)}


def refusal(sub: SubscriptionModel) -> str:
    if sub.status in (SubscriptionLifecycle.INITIAL, SubscriptionLifecycle.PROVISIONING):
        return (f"subscription {sub.subscription_id} is {sub.status}: only one whose create failed or was aborted "
                "can be terminated (its create is still going, or another process holds it)")
    return f"subscription {sub.subscription_id} is {sub.status}: it cannot be terminated"


@step("Deprovision user group", retries=6, retry_delay=timedelta(seconds=10), retry_exponential_backoff=2.0,
      max_retry_delay=timedelta(minutes=5), execution_timeout=timedelta(minutes=10))
def deprovision_user_group(subscription_id: UUID, oss: OssBssClient) -> State:
    """Remove whatever the OSS/BSS holds for the subscription (a group a stopped create made too)."""
    return {"deprovisioned": oss.deprovision_user_group(subscription_id)}


terminate_user_group = terminate_workflow(
    "terminate_user_group",
    description="""
### Terminate a User Group subscription

Runs orchestrator-core's terminate workflow for the **User Group** product, one task per step:
`store_process_subscription` (TERMINATE) → `unsync` → `deprovision_user_group` → `set_status` (terminated)
→ `resync` → `done`.

Trigger it with a `subscription_id`: an **active** User Group in sync, or one whose create failed or was
aborted (left `initial` or `provisioning`: the clean-up of a create given up). The OSS/BSS removes the group,
the subscription ends **terminated** (with its `end_date`) and its name is free again. Give `version` to be
sure nobody changed the subscription since you looked at it.
""",
    form=TerminateUserGroupForm,
    params={
        "subscription_id": {"type": "string", "title": "Subscription",
                            "description": "The id of the User Group subscription to terminate (a UUID).",
                            "pattern": UUID_PATTERN},
        "version": {"type": ["integer", "null"], "default": None, "minimum": 1, "title": "Version",
                    "description": "Optional: the subscription's version as you saw it; refused if it changed."},
    },
    steps=[deprovision_user_group],
    check=check_terminate,
)
