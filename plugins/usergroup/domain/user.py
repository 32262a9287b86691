"""The User products (internal, external) and their product types: a user lives in an existing User Group,
whose block it refers to (orchestrator-core's workshop: product_blocks/user.py, product_types/user.py)."""

from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from usergroup.domain.blocks import UserGroupBlock, UserGroupBlockInactive, UserGroupBlockProvisioning
from usergroup.domain.lifecycle import SubscriptionLifecycle
from usergroup.domain.names import Username
from usergroup.domain.ossbss_id import OssBssId
from usergroup.domain.product import FixedInput, Product
from usergroup.domain.subscription import SubscriptionModel, register


class Affiliation(StrEnum):
    internal = "internal"
    external = "external"


def _user_product(product_id: str, affiliation: Affiliation) -> Product:
    return Product(product_id=UUID(product_id), name=f"User {affiliation}", description=f"User {affiliation}",
                   product_type="User", tag="USER", fixed_inputs=(FixedInput(name="affiliation", value=affiliation),))


USER_INTERNAL_PRODUCT = _user_product("3f1b7c52-8e4d-4a6b-9c21-5d7e0f3a9b11", Affiliation.internal)
USER_EXTERNAL_PRODUCT = _user_product("3f1b7c52-8e4d-4a6b-9c21-5d7e0f3a9b12", Affiliation.external)


class UserBlockInactive(BaseModel):
    """Lifecycle `initial`: the group is a reference to the block of an existing User Group subscription."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True)

    group: UserGroupBlockInactive
    username: Username | None = None
    age: int | None = Field(default=None, ge=0, le=150)
    user_id: OssBssId | None = None


class UserBlockProvisioning(UserBlockInactive):
    group: UserGroupBlockProvisioning
    username: Username


class UserBlock(UserBlockProvisioning):
    group: UserGroupBlock
    user_id: OssBssId


class UserInactive(SubscriptionModel, is_base=True, lifecycle=[SubscriptionLifecycle.INITIAL]):
    affiliation: Affiliation  # the product's fixed input
    user: UserBlockInactive


class UserProvisioning(UserInactive, lifecycle=[SubscriptionLifecycle.PROVISIONING]):
    user: UserBlockProvisioning


class User(UserProvisioning, lifecycle=[SubscriptionLifecycle.ACTIVE]):
    user: UserBlock


register(UserInactive, USER_INTERNAL_PRODUCT, USER_EXTERNAL_PRODUCT)
