"""The FastAPI app: every route behind Airflow's login (`get_user`: its Bearer token or the UI's cookie); the API
at /api, the pages at /ui."""

from importlib.metadata import version

from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException  # FastAPI's and Starlette's own (e.g. a form part too large)

from usergroup.interfaces.api import docs, processes, products, subscriptions
from usergroup.interfaces.form_pages import FormError
from usergroup.interfaces.operations import OperationError
from usergroup.interfaces.ui import actions, pages
from usergroup.interfaces.ui.csrf import SameOrigin
from usergroup.interfaces.ui.html import UI, page


def create_app() -> FastAPI:
    # Airflow's login on every route; the contract is served by routes of our own (FastAPI's would be open).
    app = FastAPI(title="usergroup: orchestrator-core's API", version=version("usergroup"),
                  dependencies=[Depends(get_user)], docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(docs.router, prefix="/api")
    app.include_router(products.router, prefix="/api/products", tags=["Products"])
    app.include_router(processes.router, prefix="/api/processes", tags=["Processes"])
    app.include_router(subscriptions.router, prefix="/api/subscriptions", tags=["Subscriptions"])
    app.include_router(pages.router, prefix=UI, include_in_schema=False)
    app.include_router(actions.router, prefix=UI, include_in_schema=False)
    app.add_middleware(SameOrigin)

    @app.exception_handler(FormError)
    async def form_error(request: Request, exc: FormError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status)

    @app.exception_handler(OperationError)
    async def operation_error(request: Request, exc: OperationError) -> JSONResponse:
        return JSONResponse(exc.body or {"detail": exc.reason, "status": exc.status}, status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if _page(request):
            detail = "You are not logged in to Airflow: log in, then come back." if exc.status_code == 401 \
                else exc.detail
            return page(request, "error.html", exc.status_code, headers=exc.headers, status=exc.status_code,
                        detail=detail)
        return JSONResponse({"detail": exc.detail, "status": exc.status_code}, status_code=exc.status_code,
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        if _page(request):
            detail = "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in exc.errors())
            return page(request, "error.html", 422, status=422, detail=detail)
        return await request_validation_exception_handler(request, exc)

    return app


def _page(request: Request) -> bool:
    return request.url.path.removeprefix(request.scope.get("root_path", "")).startswith(UI + "/")
