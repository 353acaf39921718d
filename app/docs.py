"""API docs at /docs (sanic-ext's Swagger UI), reading the document app/openapi.py builds from the routes.

sanic-ext would serve its own document at /docs/openapi.json, guessed from type hints; this one comes
from the routes' declarations (parameters, bodies, every status they answer) with the listed symbols
as enums, so /docs/openapi.json is answered here before sanic-ext's route is reached.
"""

from __future__ import annotations

from sanic import Request, Sanic
from sanic.response import HTTPResponse
from sanic_ext import Extend

import orjson

from .openapi import build_document

SPEC_PATH = "/docs/openapi.json"


def setup_docs(app: Sanic) -> None:
    app.config.OAS_URL_PREFIX = "/docs"
    app.config.OAS_UI_DEFAULT = "swagger"
    app.config.OAS_IGNORE_OPTIONS = True
    app.config.OAS_IGNORE_HEAD = True
    app.config.CORS = True
    # sanic-ext's automatic HEAD routes call the GET handler without the blueprint's request
    # middleware, i.e. without protect()'s token check: HEAD must not bypass authentication.
    app.config.HTTP_AUTO_HEAD = False
    Extend(app)
    app.ext.openapi.describe("spotgate", version="1", description="A self-hosted gateway for Binance Spot.")
    app.ext.openapi.add_security_scheme("bearer", "http", scheme="bearer", bearer_format="JWT")
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
