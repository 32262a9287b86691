"""The generic steps of orchestrator-core (orchestrator.workflows.steps), on our store."""

from uuid import UUID

from usergroup.domain import SubscriptionLifecycle, SubscriptionModel, Target
from usergroup.domain.rules import refusal
from usergroup.domain.subscription import products_of_type
from usergroup.engine.step import State, Step, StepContext, step
from usergroup.store.errors import OutOfSyncError, RefusedError, StoreError


def check_subscription(workflow_target: Target) -> Step:
    """The first task's check of a workflow on an existing subscription: it exists, is of the workflow's
    product, the rules let a workflow of this target start on it now (`domain.rules.refusal`), and `version`,
    if given, is its current one. From then on the customer and product are the subscription's own, and
    `unsync` refuses the subscription if it changed since (`seen_version`)."""

    @step("Check the subscription may run this workflow", name="check_subscription",
          returns=("customer_id", "seen_version"))
    def _check(subscription_id: UUID, workflow_name: str, product_type: str, ctx: StepContext,
               version: int | None = None) -> State:
        product = ctx.store.product_of(subscription_id)
        if product is None:
            raise StoreError(f"no subscription {subscription_id}")
        if product.product_type != product_type:
            wanted = " or ".join(p.name for p in products_of_type(product_type))
            raise StoreError(f"subscription {subscription_id} is a {product.name}, not a {wanted}: {workflow_name} "
                             "cannot run on it")
        sub = ctx.store.get_subscription(subscription_id)
        if (refused := refusal(sub, workflow_target, **ctx.store.refusal_context(sub))) is not None:
            reason, message = refused
            raise (OutOfSyncError if reason == "subscription.not_in_sync" else RefusedError)(message)
        if version is not None and version != sub.version:
            raise StoreError(f"stale data: given version {version} does not match the current version {sub.version}")
        return {"customer_id": str(sub.customer_id), "seen_version": sub.version}

    return _check


def store_process_subscription(workflow_target: Target) -> Step:
    @step("Create Process Subscription relation", name="store_process_subscription")
    def _store(process_id: UUID, subscription_id: UUID, ctx: StepContext) -> State:
        ctx.store.link_subscription(process_id, subscription_id, str(workflow_target))
        return {}

    return _store


def set_status(status: SubscriptionLifecycle) -> Step:
    @step(f"Set subscription to '{status}'", name="set_status", returns=("subscription",))
    def _set_status(subscription: SubscriptionModel) -> State:
        return {"subscription": type(subscription).from_other_lifecycle(subscription, status)}

    return _set_status


@step("Unsync subscription", returns=("subscription",))
def unsync(subscription_id: UUID, process_id: UUID, workflow_target: Target, ctx: StepContext,
           seen_version: int | None = None) -> State:
    """Take the in-sync lock for this workflow; fails at once if another process holds it, changed it since the
    first task checked it, or it is no longer in a lifecycle state the workflow may act on. A terminate also
    takes a subscription whose create failed or was aborted (to clean it up)."""
    return {"subscription": ctx.store.unsync(subscription_id, process_id, workflow_target, seen_version)}


@step("Set subscription in sync", returns=("subscription",))
def resync(subscription: SubscriptionModel) -> State:
    subscription.insync = True
    return {"subscription": subscription}


@step("Done")
def done(process_id: UUID, ctx: StepContext) -> State:
    ctx.store.complete_process(process_id)
    return {}
