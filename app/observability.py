"""Request ids, access logs and CORS: what every request passes through on the way in and out.

Access log lines carry request id, method, route, status and latency — never a query string,
header or body, so tokens and secrets cannot leak into them.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from sanic import Request, Sanic

log = logging.getLogger("spotgate.access")
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def setup_observability(app: Sanic) -> None:
    @app.on_request(priority=100)
    async def start(request: Request):
        incoming = request.headers.get("X-Request-ID", "")
        request.ctx.request_id = incoming if REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        request.ctx.started = time.perf_counter()

    @app.on_response(priority=100)
    async def finish(request: Request, response):
        if response is not None and "X-Request-ID" not in response.headers:
            response.headers["X-Request-ID"] = getattr(request.ctx, "request_id", "-")
        started = getattr(request.ctx, "started", None)
        if started is not None and log.isEnabledFor(logging.INFO):
            route = request.route.path if request.route else "-"
            log.info("request_id=%s method=%s route=/%s status=%s latency_ms=%.2f",
                     request.ctx.request_id, request.method, route.lstrip("/"),
                     getattr(response, "status", "-"), (time.perf_counter() - started) * 1000)

    settings = app.ctx.settings
    app.config.CORS_ORIGINS = ",".join(settings.cors_origins)
    app.config.CORS_ALLOW_HEADERS = ["Authorization", "Content-Type", "X-Request-ID", "Idempotency-Key", "Prefer"]
    app.config.CORS_EXPOSE_HEADERS = ["X-Request-ID", "Retry-After", "Location"]
