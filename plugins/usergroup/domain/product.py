"""A product as the store's migrations insert it: its type, tag and fixed inputs (orchestrator-core's ProductModel)."""

from uuid import UUID

from pydantic import BaseModel, ConfigDict


class FixedInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    value: str


class Product(BaseModel):
    model_config = ConfigDict(frozen=True)

    product_id: UUID
    name: str
    description: str
    product_type: str
    tag: str
    status: str = "active"
    fixed_inputs: tuple[FixedInput, ...] = ()

    def fixed_input(self, name: str) -> str | None:
        return next((f.value for f in self.fixed_inputs if f.name == name), None)
