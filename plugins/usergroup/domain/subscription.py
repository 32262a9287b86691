"""SubscriptionModel: the lifecycle-typed subscription and its transitions (orchestrator-core's API)."""

from datetime import UTC, datetime
from typing import Any, ClassVar, Self
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, ValidationError

from usergroup.domain.errors import LifecycleError, describe
from usergroup.domain.known import known_fields
from usergroup.domain.lifecycle import SubscriptionLifecycle
from usergroup.domain.product import Product

PRODUCTS: dict[UUID, Product] = {}  # product_id -> product, as the store's migrations insert them
SUBSCRIPTION_MODEL_REGISTRY: dict[str, type["SubscriptionModel"]] = {}  # product name -> family base


def register(family_base: type["SubscriptionModel"], *products: Product) -> None:
    """Declare a product type's products (orchestrator-core's SUBSCRIPTION_MODEL_REGISTRY)."""
    for product in products:
        PRODUCTS[product.product_id] = product
        SUBSCRIPTION_MODEL_REGISTRY[product.name] = family_base


def products_of_type(product_type: str) -> list[Product]:
    return [p for p in PRODUCTS.values() if p.product_type == product_type]


class SubscriptionModel(BaseModel):
    """Base of every product type. A family's base class (`is_base=True`) takes every lifecycle that no
    stricter subclass claims with `lifecycle=[...]`."""

    # Each class's validator is built when it is first used: a task uses one or two lifecycles of one product, the
    # DAG file none (its parse, in every task and in the DAG processor, no longer builds them all).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True)

    _family_base: ClassVar[type["SubscriptionModel"]]
    _by_lifecycle: ClassVar[dict[SubscriptionLifecycle, type["SubscriptionModel"]]]

    subscription_id: UUID
    product: Product
    customer_id: UUID
    description: str
    status: SubscriptionLifecycle
    insync: bool = False
    start_date: datetime | None = None
    end_date: datetime | None = None
    note: str | None = None
    version: int = 0  # 0: never stored; the store increments it on every save

    def __init_subclass__(cls, is_base: bool = False, lifecycle: list[SubscriptionLifecycle] = (), **kw):
        super().__init_subclass__(**kw)
        if is_base:
            cls._family_base, cls._by_lifecycle = cls, {}
        for status in lifecycle:
            cls._by_lifecycle[status] = cls

    @classmethod
    def type_for(cls, status: SubscriptionLifecycle) -> type[Self]:
        return cls._by_lifecycle.get(SubscriptionLifecycle(status), cls._family_base)

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> "SubscriptionModel":
        """The subscription in a workflow state (plain JSON, maybe written by an older deploy), typed by its
        product and lifecycle; fields the model no longer declares are ignored."""
        model = SUBSCRIPTION_MODEL_REGISTRY[data["product"]["name"]].type_for(data["status"])
        return model.model_validate(known_fields(model, data))

    @classmethod
    def from_product_id(cls, product_id: UUID, customer_id: UUID, status: SubscriptionLifecycle = "initial",
                        subscription_id: UUID | None = None) -> Self:
        """A new subscription in `status` (`initial`), out of sync, with empty product blocks (a block they
        require holds an empty block in turn) and its product's fixed inputs as fields."""
        product = PRODUCTS.get(UUID(str(product_id)))
        if product is None or SUBSCRIPTION_MODEL_REGISTRY[product.name] is not cls._family_base:
            raise LifecycleError(f"unknown product_id {product_id}" if product is None else
                                 f"product {product.name} is not a {cls._family_base.__name__}")
        subscription_id = subscription_id or uuid4()
        blocks = {name: _new_block(cls.model_fields[name].annotation, subscription_id) for name in cls.block_fields()}
        fixed = {f.name: f.value for f in product.fixed_inputs if f.name in cls.model_fields}
        return cls.type_for(status)._validated(
            subscription_id=subscription_id, product=product, customer_id=customer_id,
            description=f"Initial subscription of {product.description}", status=status, insync=False, **fixed,
            **blocks)

    @classmethod
    def from_other_lifecycle(cls, subscription: "SubscriptionModel", status: SubscriptionLifecycle) -> Self:
        """The same subscription as the class of `status`; refuses a missing mandatory field by name."""
        status = SubscriptionLifecycle(status)
        data = subscription.model_dump() | {"status": status}
        now = datetime.now(UTC)
        if status == SubscriptionLifecycle.ACTIVE and data["start_date"] is None:
            data["start_date"] = now
        if status == SubscriptionLifecycle.TERMINATED and data["end_date"] is None:
            data["end_date"] = now
        return cls.type_for(status)._validated(**data)

    def product_fields(self) -> dict[str, Any]:
        """The product type's own fields: its fixed inputs (a User's affiliation) and its blocks, by name."""
        return {f: getattr(self, f) for f in type(self).model_fields if f not in SubscriptionModel.model_fields}

    @classmethod
    def block_fields(cls) -> set[str]:
        """The product block fields (orchestrator-core's product blocks): every model field but `product`."""
        return {n for n, f in cls.model_fields.items() if isinstance(f.annotation, type)
                and issubclass(f.annotation, BaseModel) and n != "product"}

    @classmethod
    def _validated(cls, **data: Any) -> Self:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise LifecycleError(describe(cls, exc, data.get("status"))) from None


def _new_block(block: type[BaseModel], owner: UUID | None = None) -> BaseModel:
    """An empty block owned by `owner`; a block it requires is a new empty one (no owner until it is set to an
    existing subscription's block)."""
    fields = {name: _new_block(f.annotation) for name, f in block.model_fields.items() if f.is_required()
              and isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel)}
    if "owner_subscription_id" in block.model_fields:
        fields["owner_subscription_id"] = owner
    return block(**fields)
