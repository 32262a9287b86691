"""validate_users: validate_user for every active User in sync, every night."""

from usergroup.engine.workflow import Schedule
from usergroup.workflows.user.validate_user import validate_user

validate_users = Schedule(
    "validate_users",
    description="""
### Validate every User, every night

Every day at midnight (UTC), and whenever it is triggered: `select_subscriptions` picks every **active** User
in sync, and `validate_user` runs orchestrator-core's validate workflow for each of them, one mapped task
instance and one process per subscription. One that fails (the user, or its group, drifted in the OSS/BSS) fails
on its own, out of sync, the others go on; a subscription another process took since the selection is skipped,
with the reason. The run fails if any validation failed.
""",
    workflow=validate_user,
    schedule="@daily",
    tags=("usergroup", "orchestrator", "validate", "schedule"),
)
