"""GET /api/products/: our products, as orchestrator-core lists them."""

from uuid import UUID

from fastapi import APIRouter, HTTPException

from usergroup.interfaces.contract import answers
from usergroup.interfaces.deps import Reader, store
from usergroup.interfaces.views import product_json

router = APIRouter()


@router.get("/", responses=answers({}))
def list_products(user: Reader) -> list[dict]:
    with store().transaction() as repo:
        return [product_json(p) for p in sorted(repo.products().values(), key=lambda p: p.name)]


@router.get("/{product_id}", responses=answers({404: "No product with this id"}))
def get_product(product_id: UUID, user: Reader) -> dict:
    with store().transaction() as repo:
        product = repo.products().get(product_id)
    if product is None:
        raise HTTPException(404, f"no product {product_id}")
    return product_json(product)
