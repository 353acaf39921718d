"""API docs at /docs: Swagger UI served offline, reading the document app/openapi.py builds from the routes.

The Swagger UI page (app/swagger.html) and its assets are served by the gateway itself, from the
pinned `swagger-ui-py` package (Swagger UI 5: our document is OpenAPI 3.1), so /docs works with no
internet: sanic-ext's own page loads Swagger UI from a CDN, Redoc too (turned off), and its OAuth2
redirect page fetches one at request time (answered here from the package instead).

sanic-ext would serve its own document at /docs/openapi.json, guessed from type hints; this one comes
from the routes' declarations (parameters, bodies, every status they answer) with the listed symbols
as enums, so /docs/openapi.json is answered here before sanic-ext's route is reached.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import orjson
from sanic import Request, Sanic
from sanic.response import HTTPResponse, file
from sanic_ext import Extend

from .openapi import build_document

SPEC_PATH = "/docs/openapi.json"
SWAGGER_PAGE = Path(__file__).with_name("swagger.html")
# The package's static files only: found without importing it (its Python part pulls in jinja2).
ASSETS = Path(importlib.util.find_spec("swagger_ui").submodule_search_locations[0]) / "static"


def setup_docs(app: Sanic) -> None:
    app.config.OAS_URL_PREFIX = "/docs"
    app.config.OAS_UI_DEFAULT = "swagger"
    app.config.OAS_PATH_TO_SWAGGER_HTML = str(SWAGGER_PAGE)
    app.config.OAS_UI_REDOC = False
    app.config.OAS_IGNORE_OPTIONS = True
    app.config.OAS_IGNORE_HEAD = True
    app.config.CORS = True
    # sanic-ext's automatic HEAD routes call the GET handler without the blueprint's request
    # middleware, i.e. without protect()'s token check: HEAD must not bypass authentication.
    app.config.HTTP_AUTO_HEAD = False
    Extend(app)
    app.ext.openapi.describe("spotgate", version="1", description="A self-hosted gateway for Binance Spot.")
    app.ext.openapi.add_security_scheme("bearer", "http", scheme="bearer", bearer_format="JWT")
    app.static("/docs/ui", ASSETS, name="docs_ui")
    oauth2_redirect = f"{app.name}.openapi.oauth2-redirect"
    built: dict[tuple, bytes] = {}

    @app.on_request(priority=50)
    async def document(request: Request):
        if request.path != SPEC_PATH or request.method != "GET":
            return None
        symbols = await request.app.ctx.market.symbol_names()
        key = tuple(symbols or ())
        if key not in built:
            built.clear()  # only the current listing is worth keeping
            built[key] = orjson.dumps(build_document(request.app, symbols))
        return HTTPResponse(built[key], content_type="application/json")

    @app.on_request
    async def local_oauth2_redirect(request: Request):
        if request.route is not None and request.route.name == oauth2_redirect:
            return await file(ASSETS / "oauth2-redirect.html")
