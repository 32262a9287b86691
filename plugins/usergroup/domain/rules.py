"""Which workflows a subscription may run now, and why not (orchestrator-core's `subscription_workflows`)."""

from collections.abc import Iterable, Sequence
from typing import Any

from usergroup.domain.lifecycle import SubscriptionLifecycle, Target
from usergroup.domain.subscription import SubscriptionModel

WORKFLOW_LIFECYCLES: dict[Target, tuple[SubscriptionLifecycle, ...]] = {
    Target.CREATE: (SubscriptionLifecycle.INITIAL,),
    Target.MODIFY: (SubscriptionLifecycle.ACTIVE,),
    Target.TERMINATE: (SubscriptionLifecycle.ACTIVE,),  # and the clean-up of a create that failed or was aborted
    Target.VALIDATE: (SubscriptionLifecycle.ACTIVE,),
    Target.SYSTEM: (SubscriptionLifecycle.ACTIVE,),
}
UNFINISHED_CREATE = (SubscriptionLifecycle.INITIAL, SubscriptionLifecycle.PROVISIONING)
DONE_TO = {Target.MODIFY: "modified", Target.TERMINATE: "terminated", Target.VALIDATE: "validated",
           Target.SYSTEM: "changed by a system workflow", Target.CREATE: "created again"}


def out_of_sync(subscription_id: Any, holders: Sequence[str]) -> str:
    """"subscription X is out of sync", naming the processes that hold it (or saying that none does)."""
    if not holders:
        return f"subscription {subscription_id} is out of sync (no unfinished process holds it: an operator can " \
               "set it in sync)"
    return f"subscription {subscription_id} is out of sync; held by " + ", ".join(f"process {h}" for h in holders)


def refusal(sub: SubscriptionModel, target: Target, *, holders: Sequence[str] = (), in_use_by: Sequence[str] = (),
            failed_create: bool = False) -> tuple[str, str] | None:
    """Why a workflow of `target` may not start on `sub` now, as (orchestrator-core's reason code, a message
    naming the subscription and what is wrong), or None if it may. `holders` are the unfinished processes
    holding it, `in_use_by` the subscriptions that depend on it, `failed_create` whether it is what a failed or
    aborted create left behind (which a terminate may clean up)."""
    sid = sub.subscription_id
    if target == Target.TERMINATE and failed_create and sub.status in UNFINISHED_CREATE:
        return None
    if sub.status not in WORKFLOW_LIFECYCLES[target]:
        if target == Target.TERMINATE and sub.status in UNFINISHED_CREATE:
            return ("subscription.no_modify_invalid_status",
                    f"subscription {sid} is {sub.status}: only one whose create failed or was aborted can be "
                    "terminated (its create is still going, or another process holds it)")
        return "subscription.no_modify_invalid_status", f"subscription {sid} is {sub.status}: it cannot be " \
                                                         f"{DONE_TO[target]}"
    if not sub.insync:
        return "subscription.not_in_sync", out_of_sync(sid, holders)
    if target == Target.TERMINATE and in_use_by:
        return "subscription.no_modify_subscription_in_use_by_others", in_use_message(sid, in_use_by)
    return None


def in_use_message(subscription_id: Any, in_use_by: Sequence[str]) -> str:
    """orchestrator-core's words, naming the subscriptions that use it."""
    return f"subscription {subscription_id} can not be terminated as it is used in other subscriptions: " \
           + ", ".join(f"subscription {s}" for s in in_use_by)


def subscription_workflows(sub: SubscriptionModel, workflows: Iterable[tuple[str, str, Target]],
                           **why: Any) -> dict[str, Any]:
    """Per target (lower case) the workflows (name, description) of the subscription's product that act on an
    existing subscription, each with a `reason` and a `message` if it may not run now; `reason` at the top
    when the subscription is out of sync. `why` is `refusal`'s holders, in_use_by and failed_create."""
    result: dict[str, Any] = {str(t).lower(): [] for t in Target}
    for name, description, target in workflows:
        if target == Target.CREATE:
            continue
        entry = {"name": name, "description": description}
        if (refused := refusal(sub, target, **why)) is not None:
            entry["reason"], entry["message"] = refused
        result[str(target).lower()].append(entry)
    if not sub.insync:
        result["reason"] = "subscription.not_in_sync"
    return result
