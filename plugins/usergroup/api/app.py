"""The FastAPI app: every route behind Airflow's login (`get_user`: its Bearer token or the UI's cookie)."""

from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from usergroup.api import processes, products, subscriptions
from usergroup.api.forms import FormError


def create_app() -> FastAPI:
    app = FastAPI(title="usergroup: orchestrator-core's API", dependencies=[Depends(get_user)], docs_url=None,
                  redoc_url=None, openapi_url=None)
    app.include_router(products.router, prefix="/api/products")
    app.include_router(processes.router, prefix="/api/processes")
    app.include_router(subscriptions.router, prefix="/api/subscriptions")

    @app.exception_handler(FormError)
    async def form_error(request: Request, exc: FormError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail, "status": exc.status_code}, status_code=exc.status_code,
                            headers=exc.headers)

    return app
