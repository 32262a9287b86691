"""The UserGroup product block, one class per lifecycle, each stricter than the last."""

from pydantic import BaseModel, ConfigDict

from usergroup.domain.names import GroupName


class UserGroupBlockInactive(BaseModel):
    """Lifecycle `initial`: nothing is known yet."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    group_name: GroupName | None = None
    group_id: int | None = None


class UserGroupBlockProvisioning(UserGroupBlockInactive):
    """Lifecycle `provisioning`: the name is required, the OSS/BSS id not yet."""

    group_name: GroupName
    group_id: int | None = None


class UserGroupBlock(UserGroupBlockProvisioning):
    """Lifecycle `active`: name and id required."""

    group_name: GroupName
    group_id: int
