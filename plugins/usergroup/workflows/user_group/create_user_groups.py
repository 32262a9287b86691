"""create_user_groups: create_user_group for up to 10,000 names in one run, each step for all of them at once."""

from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from usergroup.domain.names import GROUP_NAME_RULES, GroupName
from usergroup.domain.schema import FieldSchema
from usergroup.engine.items import SourceError, names_of
from usergroup.engine.step import State
from usergroup.engine.workflow import Bulk
from usergroup.ossbss.client import Answered, OssBssClient, provision_many
from usergroup.settings import settings
from usergroup.workflows.user_group.create_user_group import CreateUserGroupForm, create_user_group

SHOWN = 10  # bad names an error lists
MAX_ITEMS = settings().max_items


class CreateUserGroupsForm(BaseModel):
    """The run's form: the names as a list, or the URI of a text file of them. That it is exactly one of the two,
    and how many names the file holds, the run's first task checks (`names_of`), before anything is written."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    group_names: Annotated[
        list[Annotated[GroupName, FieldSchema("Group name", f"The name of a new user group: {GROUP_NAME_RULES}")]]
        | None,
        Field(min_length=1, max_length=MAX_ITEMS),
        FieldSchema("Group names", f"The names of the new user groups, 1 to {MAX_ITEMS:,}; or give a source."),
    ] = None
    source: Annotated[str | None, Field(min_length=1), FieldSchema(
        "Source", "Or: the URI of a text file of names, one a line (file:///... or s3://...).")] = None


def group_names(params: dict[str, Any], read_source: Callable[[str], list[str]]) -> list[dict[str, Any]]:
    """Each item's form: a name of the list or the file, checked by the create's rules; every bad one is named
    (by its place) before anything is written."""
    names, bad = names_of(params, "group_name", read_source), []
    for n, name in enumerate(names, start=1):
        try:
            CreateUserGroupForm(group_name=name)
        except ValidationError as exc:
            bad.append(f"item {n} ({name[:80]!r}): {exc.errors()[0]['msg']}")
    if bad:
        more = f"; and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
        raise SourceError(f"{len(bad)} of {len(names)} names break the rules: {'; '.join(bad[:SHOWN])}{more}")
    return [{"group_name": name} for name in names]


def provision_user_groups(states: list[State], oss: OssBssClient) -> Answered:
    """The chunk's groups provisioned in one batch call; each item's step reads its answer."""
    return Answered(oss, provision_many(oss, {UUID(s["subscription_id"]): s["group_name"] for s in states}))


create_user_groups = Bulk(
    "create_user_groups",
    description="""
### Create many User Group subscriptions in one run

The seven tasks of `create_user_group` (`create_subscription` → `store_process_subscription` →
`initialize_subscription` → `provision_user_group` → `set_status` → `resync` → `done`), each running its
step for every group of the run, a chunk of groups per transaction. Give either `group_names` (a list, one
name a line in the form) or `source` (the URI of a UTF-8 text file with one name a line: `file:///...` in a
folder the Airflow Variable `usergroup_bulk_sources` allows, by default the Airflow home's `bulk/`, or
`s3://...`); 1 to 10,000 names, each by the create's rules.

Every group gets its own process, subscription and trail, as a single create gives it. A name given twice in
the run, one another subscription or process holds, or one the OSS/BSS refuses fails that group's process
with its reason; the others go on. The task where a group failed fails (after committing the others), and
the run fails naming them: fix the cause and clear the failed task (with its downstream tasks) to retry only
the groups that did not complete, or abort their processes.
""",
    workflow=create_user_group,
    form=CreateUserGroupsForm,
    items=group_names,
    prepare={"provision_user_group": provision_user_groups},
    tags=("usergroup", "orchestrator", "create", "bulk"),
)
