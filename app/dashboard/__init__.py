"""The trading dashboard at `/`: static ES modules served by the web process, no build step.

    GET /                    static/index.html (no token: the page signs in and sends the token itself)
    GET /dashboard/<file>    static/ (js/, css/, vendor/lightweight-charts/)

The page is an ordinary client of the public REST + WebSocket API; nothing here serves it data.
Its Content-Security-Policy allows only this origin: scripts and styles from /dashboard, fetch and
WebSocket to the gateway itself, and the one inline <style> the vendored chart library writes for
its attribution logo (allowed by its hash, not by 'unsafe-inline').
"""

from __future__ import annotations

from pathlib import Path

from sanic import Blueprint, Request, Sanic
from sanic.exceptions import NotFound
from sanic.handlers.directory import DirectoryHandler
from sanic.response import file
from sanic_ext import openapi

STATIC = Path(__file__).resolve().parent / "static"
CHART_LIBRARY = STATIC / "vendor" / "lightweight-charts" / "lightweight-charts.standalone.production.mjs"
# sha256 of the CSS lightweight-charts 5.2.1 puts in a <style> element for its attribution logo
# (tests/browser/test_assets.py recomputes it from the vendored file, so an update cannot drift).
CHART_STYLE_HASH = "sha256-3pRED1tOXas1FXFoPb9TGCjmYe9XQsmO9OV23khV2nY="

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        f"style-src 'self' '{CHART_STYLE_HASH}'",
        "img-src 'self' data:",
        "font-src 'self'",
        # 'self' covers ws:// and wss:// to the same host and port (CSP Level 3).
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The page is small and changes with every deploy: always revalidate it; assets carry ETags.
    "Cache-Control": "no-cache",
}


class NoListing(DirectoryHandler):
    """A folder is not a page: 404 (Sanic's own handler raises IsADirectoryError, a 500)."""

    async def handle(self, request: Request, path: str):
        raise NotFound("File not found")


async def page(request: Request):
    return await file(STATIC / "index.html", headers=PAGE_HEADERS, mime_type="text/html; charset=utf-8")


def setup_dashboard(app: Sanic) -> None:
    """`/` and `/dashboard/*`, public (the API calls the page makes carry the token). A blueprint per
    app: its static route cannot be registered twice when tests build several apps."""
    bp = Blueprint("dashboard")
    bp.add_route(page, "/", methods=["GET"], name="page")
    bp.static(
        "/dashboard",
        STATIC,
        name="assets",
        use_content_range=False,
        stream_large_files=False,
        directory_handler=NoListing("/dashboard", STATIC),
    )

    @bp.on_response
    async def harden(request: Request, response):
        if response is not None and request.path.startswith("/dashboard/"):
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Cache-Control", "no-cache")

    app.blueprint(bp)
    openapi.exclude(bp=bp)
