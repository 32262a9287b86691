"""The UserGroup product block, one class per lifecycle, each stricter than the last."""

from uuid import UUID

from pydantic import BaseModel, ConfigDict

from usergroup.domain.names import GroupName
from usergroup.domain.ossbss_id import OssBssId


class UserGroupBlockInactive(BaseModel):
    """Lifecycle `initial`: nothing is known yet. `owner_subscription_id` is the subscription the block belongs
    to (set by the store): another product's block refers to it by that (orchestrator-core's block reference)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True)

    owner_subscription_id: UUID | None = None
    group_name: GroupName | None = None
    group_id: OssBssId | None = None


class UserGroupBlockProvisioning(UserGroupBlockInactive):
    """Lifecycle `provisioning`: the name is required, the OSS/BSS id not yet."""

    group_name: GroupName
    group_id: OssBssId | None = None


class UserGroupBlock(UserGroupBlockProvisioning):
    """Lifecycle `active`: name and id required."""

    group_name: GroupName
    group_id: OssBssId
