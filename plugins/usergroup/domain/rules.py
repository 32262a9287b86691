"""Which lifecycle states each kind of workflow may start from (orchestrator-core's per-target rules)."""

from usergroup.domain.lifecycle import SubscriptionLifecycle, Target

WORKFLOW_LIFECYCLES: dict[Target, tuple[SubscriptionLifecycle, ...]] = {
    Target.CREATE: (SubscriptionLifecycle.INITIAL,),
    Target.MODIFY: (SubscriptionLifecycle.ACTIVE,),
    Target.TERMINATE: (SubscriptionLifecycle.ACTIVE,),  # and the clean-up of a create that failed or was aborted
    Target.VALIDATE: (SubscriptionLifecycle.ACTIVE,),
    Target.SYSTEM: (SubscriptionLifecycle.ACTIVE,),
}
