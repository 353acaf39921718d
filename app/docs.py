"""OpenAPI docs at /docs (sanic-ext), with the bearer scheme every protected route uses."""

from __future__ import annotations

from sanic import Sanic
from sanic_ext import Extend


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
