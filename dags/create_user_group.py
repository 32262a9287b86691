"""create_user_group: orchestrator-core's create UserGroup workflow, one task per step."""

from datetime import timedelta

from airflow.sdk import Param, dag

from usergroup.adapter import step_task
from usergroup.domain import SubscriptionLifecycle, Target
from usergroup.domain.names import GROUP_NAME_MAX_LENGTH, GROUP_NAME_PATTERN, GROUP_NAME_RULES
from usergroup.steps import done, resync, set_status, store_process_subscription
from usergroup.workflows.create_user_group import (
    CreateUserGroupForm,
    create_subscription,
    initialize_subscription,
    provision_user_group,
)

DOC_MD = """
### Create a User Group subscription

Runs orchestrator-core's create workflow for the **User Group** product, one task per step:
`create_subscription` → `store_process_subscription` (CREATE) → `initialize_subscription` →
`provision_user_group` → `set_status` (active) → `resync` → `done`.

Trigger it with a `group_name`. The run creates the subscription, records this run as its process,
provisions the group in the OSS/BSS and leaves the subscription **active** and **in sync**.

See the result with `usergroup subscriptions list` (or `show ID --json`); every step of the run is in
`usergroup subscriptions show ID --json` under `processes`. A failed task can be cleared: it resumes
from the state of the last successful step.
"""


@dag(
    dag_id="create_user_group",
    schedule=None,
    catchup=False,
    tags=["usergroup", "orchestrator", "create"],
    doc_md=DOC_MD,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=5)},
    params={
        "group_name": Param(
            type="string",
            title="Group name",
            description=f"The name of the new user group: {GROUP_NAME_RULES}",
            minLength=1,
            maxLength=GROUP_NAME_MAX_LENGTH,
            pattern=GROUP_NAME_PATTERN,
        ),
    },
)
def create_user_group():
    state = step_task(create_subscription, form=CreateUserGroupForm, target=Target.CREATE)()
    state = step_task(store_process_subscription(Target.CREATE))(state)
    state = step_task(initialize_subscription)(state)
    state = step_task(provision_user_group)(state)
    state = step_task(set_status(SubscriptionLifecycle.ACTIVE))(state)
    state = step_task(resync)(state)
    step_task(done)(state)


create_user_group()
