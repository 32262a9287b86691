"""The "User Group" product, as the store's migration inserts it."""

from uuid import UUID

from pydantic import BaseModel, ConfigDict


class Product(BaseModel):
    model_config = ConfigDict(frozen=True)

    product_id: UUID
    name: str
    description: str
    product_type: str
    tag: str
    status: str = "active"


USER_GROUP_PRODUCT = Product(
    product_id=UUID("6b3c3a1e-5d0f-4e43-9a2f-2f1e0a8b7c01"),
    name="User Group",
    description="User Group",
    product_type="UserGroup",
    tag="GROUP",
)
