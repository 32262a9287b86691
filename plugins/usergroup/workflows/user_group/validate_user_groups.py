"""validate_user_groups: validate_user_group for every active User Group in sync, every night."""

from usergroup.engine.workflow import Schedule
from usergroup.workflows.user_group.validate_user_group import validate_user_group

validate_user_groups = Schedule(
    "validate_user_groups",
    description="""
### Validate every User Group, every night

Every day at midnight (UTC), and whenever it is triggered: `select_subscriptions` picks every **active**
User Group in sync, and `validate_user_group` runs orchestrator-core's validate workflow for each of them,
one mapped task instance and one process per subscription. One that fails (its group drifted in the
OSS/BSS) fails on its own, out of sync, the others go on; a subscription another process took since the
selection is skipped, with the reason. The run fails if any validation failed.
""",
    workflow=validate_user_group,
    schedule="@daily",
    tags=("usergroup", "orchestrator", "validate", "schedule"),
)
