"""The generic steps of orchestrator-core (orchestrator.workflows.steps), on our store."""

from uuid import UUID

from usergroup.domain import SubscriptionLifecycle, SubscriptionModel, Target
from usergroup.step import State, Step, step


def store_process_subscription(workflow_target: Target) -> Step:
    @step("Create Process Subscription relation", name="store_process_subscription")
    def _store(process_id: UUID, subscription_id: UUID, repository) -> State:
        repository.link_subscription(UUID(str(process_id)), UUID(str(subscription_id)), str(workflow_target))
        return {}

    return _store


def set_status(status: SubscriptionLifecycle) -> Step:
    @step(f"Set subscription to '{status}'", name="set_status")
    def _set_status(subscription: SubscriptionModel) -> State:
        return {"subscription": type(subscription).from_other_lifecycle(subscription, status)}

    return _set_status


@step("Unsync subscription")
def unsync(subscription_id: UUID, process_id: UUID, workflow_target: str, repository) -> State:
    """Take the in-sync lock for this workflow; fails at once if another process holds it, or if the
    subscription is no longer in a lifecycle state the workflow may act on. A terminate also takes a
    subscription whose create failed or was aborted (to clean it up)."""
    return {"subscription": repository.unsync(UUID(str(subscription_id)), UUID(str(process_id)),
                                              Target(workflow_target))}


@step("Set subscription in sync")
def resync(subscription: SubscriptionModel) -> State:
    subscription.insync = True
    return {"subscription": subscription}


@step("Done")
def done(process_id: UUID, repository) -> State:
    repository.complete_process(UUID(str(process_id)))
    return {}
