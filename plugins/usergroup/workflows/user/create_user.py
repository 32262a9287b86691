"""The create User workflow: a user in an existing User Group (orchestrator-core's workshop), declared once."""

from typing import Annotated, ClassVar, Literal
from uuid import UUID, uuid5

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from usergroup.domain import SubscriptionLifecycle, Target, UserInactive, UserProvisioning
from usergroup.domain.names import USERNAME_RULES, Username
from usergroup.domain.schema import FieldSchema
from usergroup.domain.subscription import products_of_type
from usergroup.engine.generic_steps import store_process_subscription
from usergroup.engine.input_step import InputForm, input_step
from usergroup.engine.step import AbortProcess, State, StepContext, step
from usergroup.engine.workflow import create_workflow
from usergroup.ossbss.client import OSSBSS_RETRIES
from usergroup.settings import settings
from usergroup.workflows.fields import Age, CanonicalUuid, Remark, SubscriptionId

USER_PRODUCTS = {str(p.product_id): p.name for p in products_of_type("User")}


def _user_product(value: UUID) -> UUID:
    if str(value) not in USER_PRODUCTS:
        raise ValueError(f"{value} is not a User product (one of: {', '.join(USER_PRODUCTS.values())})")
    return value


class CreateUserForm(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    product: Annotated[CanonicalUuid, AfterValidator(_user_product),
                       FieldSchema("Product", "User internal or User external.", options=USER_PRODUCTS)]
    user_group_id: Annotated[SubscriptionId, FieldSchema(
        "User group", "The subscription id of an active User Group in sync (a UUID).")]
    username: Annotated[Username, FieldSchema("Username", f"The user's name: {USERNAME_RULES}")]
    age: Age = None


@step("Check the user group and the username", returns=("customer_id",))
def check_user_group(user_group_id: UUID, username: str, process_id: UUID, ctx: StepContext) -> State:
    """Refused at the first task, writing nothing, unless the group is an active User Group in sync and no other
    user of it (or unfinished process) has the username; the user is the group's customer's."""
    group = ctx.store.lock_in_sync(user_group_id, "UserGroup")
    ctx.store.claim_name("User", user_group_id, username, process_id)
    return {"customer_id": str(group.customer_id)}


@step("Create subscription", returns=("subscription", "subscription_id"))
def create_subscription(product_id: UUID, customer_id: UUID, process_id: UUID) -> State:
    subscription = UserInactive.from_product_id(
        product_id, customer_id, subscription_id=uuid5(process_id, "subscription"))
    return {"subscription": subscription, "subscription_id": str(subscription.subscription_id)}


@step("Initialize subscription", returns=("subscription",))
def initialize_subscription(subscription: UserInactive, user_group_id: UUID, username: str, age: int | None,
                            ctx: StepContext) -> State:
    """The user's group is the group's own block, referred to, not copied. The group is locked while this
    commits, so a terminate of the group either waits and then sees this user (and is refused), or went first
    and this is refused: no user ever points at a terminated group."""
    group = ctx.store.lock_in_sync(user_group_id, "UserGroup")
    subscription.user.group = group.user_group
    subscription.user.username, subscription.user.age = username, age
    subscription.description = f"User {username} from group {group.user_group.group_name} ({subscription.affiliation})"
    return {"subscription": UserProvisioning.from_other_lifecycle(subscription, SubscriptionLifecycle.PROVISIONING)}


class UserApproval(InputForm):
    """Approve the external user"""

    option_field: ClassVar[str] = "decision"
    decision: Annotated[Literal["Approve", "Reject"], FieldSchema(
        "Decision", "Approve: the user is provisioned. Reject: the process ends aborted, nothing provisioned.")]
    note: Annotated[Remark, FieldSchema("Note", "Why you approve (optional).")] = ""
    reason: Annotated[Remark, FieldSchema("Reason", "Why you reject: required to reject.")] = Field(
        default="", validate_default=True)

    @field_validator("reason")
    @classmethod
    def _reason_to_reject(cls, reason: str, info: ValidationInfo) -> str:
        if info.data.get("decision") == "Reject" and not reason:
            raise ValueError("give the reason to reject")
        return reason


def _external(subscription: UserProvisioning) -> bool:
    return subscription.affiliation == "external"


@input_step("Approve the external user", UserApproval, when=_external, timeout=lambda: settings().approval_timeout)
def approve_user(decision: str, reason: str) -> State:
    """An external user is provisioned only once an operator approves; internal users are not asked."""
    if decision == "Reject":
        raise AbortProcess(f"the external user was rejected: {reason}")
    return {}


@step("Provision user", returns=("subscription", "user_id"), **OSSBSS_RETRIES)
def provision_user(subscription: UserProvisioning, ctx: StepContext) -> State:
    user = subscription.user
    user.user_id = ctx.oss.provision_user(subscription.subscription_id, user.group.group_id, user.username, user.age,
                                          affiliation=subscription.affiliation)
    return {"subscription": subscription, "user_id": user.user_id}


create_user = create_workflow(
    "create_user",
    description="""
### Create a User subscription in a User Group

Runs orchestrator-core's create workflow for the **User** products (workshop), one task per step:
`create_subscription` → `store_process_subscription` (CREATE) → `initialize_subscription` →
`approve_user` (User external only: an operator approves or rejects) → `provision_user` → `set_status`
(active) → `resync` → `done`.

Trigger it with the `product` (User internal or User external: its fixed input `affiliation`), the
`user_group_id` of an **active** User Group in sync, a `username` (the group name's rules, unique among the
group's users) and an optional `age`. The user's `group` is the group's own block: a later rename of the group
shows in the user at once, and the group cannot be terminated while the user is not.
""",
    product_type="User",
    form=CreateUserForm,
    steps=[create_subscription, store_process_subscription(Target.CREATE), initialize_subscription, approve_user,
           provision_user],
    checks=(check_user_group,),
)
