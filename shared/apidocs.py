"""The API docs page (`/docs`, Swagger UI) of every service, served whole from the service itself.

FastAPI's own page loads Swagger UI from a CDN: it stays blank on an air-gapped site, and the
page's CSP had to name that CDN. Swagger UI's files come with the `swagger-ui-py` package
(Swagger UI 5, which renders OpenAPI 3.1; the older `swagger-ui-bundle` ships 4.15, which
cannot); only the three the page needs are served, from memory, read once.
"""

import importlib.util
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from shared.problems import NotFound

ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
# Not versioned by path: kept a day, then fetched again.
ASSET_CACHING = "public, max-age=86400"

api_docs = APIRouter(include_in_schema=False)


@api_docs.get("/docs")
def docs_page(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    return get_swagger_ui_html(
        openapi_url=root + (request.app.openapi_url or "/openapi.json"),
        title=f"{request.app.title}: API",
        swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
        swagger_favicon_url=f"{root}/docs/assets/favicon-32x32.png",
    )


@api_docs.get("/docs/assets/{name}")
def docs_asset(name: str) -> Response:
    if name not in ASSETS:
        raise NotFound(f"the docs page has no asset {name!r}")
    return Response(_asset(name), media_type=ASSETS[name], headers={"cache-control": ASSET_CACHING})


@cache
def _asset(name: str) -> bytes:
    return (_static_directory() / name).read_bytes()


def _static_directory() -> Path:
    # Found, not imported: the package's own code (a docs server for other frameworks) is unused.
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"
