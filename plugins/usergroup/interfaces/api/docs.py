"""The API's contract, behind the login like every route: its OpenAPI document and Swagger UI (served from this
package's dependencies, not a CDN)."""

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from usergroup.interfaces.deps import Reader

router = APIRouter(include_in_schema=False)
ASSETS = Path(fastapi_offline.__file__).parent / "static"
SERVED = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}


@router.get("/openapi.json")
def openapi(request: Request, user: Reader) -> JSONResponse:
    """The document, its server the plugin's prefix (so that a client generated from it finds the API)."""
    schema, root = request.app.openapi(), request.scope.get("root_path", "")
    return JSONResponse({**schema, "servers": [{"url": root or "/"}]})


@router.get("/docs")
def swagger_ui(request: Request, user: Reader) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(openapi_url=f"{root}/api/openapi.json", title=f"{request.app.title}: Swagger UI",
                               swagger_js_url=f"{root}/api/docs/swagger-ui-bundle.js",
                               swagger_css_url=f"{root}/api/docs/swagger-ui.css",
                               swagger_favicon_url=f"{root}/api/docs/favicon.png")


@router.get("/docs/{asset}")
def swagger_asset(asset: str, user: Reader) -> FileResponse:
    if asset not in SERVED:
        raise HTTPException(404, f"no {asset}")
    return FileResponse(ASSETS / asset)
