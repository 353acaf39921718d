"""Request ids, access logs, HTTP metrics and CORS: what every request passes through on the way in and out.

The request id (X-Request-ID, or a new one) is the log context of everything the request logs and
travels to the workers in its task messages. Access log lines carry method, route template, status,
latency and the error code — never a query string, header or body, so tokens and secrets cannot leak
into them. They are INFO; 5xx answers are WARNING (500: ERROR), so they show at any usual LOG_LEVEL.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from sanic import Request, Sanic

from config.logging import reset_log_context, set_log_context
from services.metrics import metrics

log = logging.getLogger("spotgate.access")
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
METHODS = frozenset(("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"))
UNMATCHED = "unmatched"  # the route label of requests no route took (404s): never the raw path


def route_label(request: Request) -> str:
    """The route template (`/api/v1/jobs/<job_id:str>`), so label values stay a bounded set."""
    route = request.route
    return "/" + route.path.lstrip("/") if route is not None else UNMATCHED


def setup_observability(app: Sanic) -> None:
    m = metrics()
    children: dict[tuple, tuple] = {}  # (route, method, status) → (counter child, histogram child)

    def series(route: str, method: str, status: int):
        key = (route, method, status)
        found = children.get(key)
        if found is None:
            found = children[key] = (
                m.http_requests.labels(route, method, str(status)),
                m.http_duration.labels(route, method),
            )
        return found

    @app.on_request(priority=100)
    async def start(request: Request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        request.ctx.request_id = request_id
        request.ctx.log_context = set_log_context(request_id=request_id)
        request.ctx.started = time.perf_counter()

    @app.on_response(priority=100)
    async def finish(request: Request, response):
        if response is not None and "X-Request-ID" not in response.headers:
            response.headers["X-Request-ID"] = getattr(request.ctx, "request_id", "-")
        started = getattr(request.ctx, "started", None)
        if started is None:
            return
        elapsed = time.perf_counter() - started
        status = getattr(response, "status", 0) or 0
        route = route_label(request)
        method = request.method if request.method in METHODS else "other"
        requests, duration = series(route, method, status)
        requests.inc()
        if not (request.route is not None and getattr(request.route.extra, "websocket", False)):
            duration.observe(elapsed)  # a WebSocket's "latency" would be its whole session
        level = logging.INFO if status < 500 else logging.ERROR if status == 500 else logging.WARNING
        if log.isEnabledFor(level):
            code = getattr(request.ctx, "error_code", None)
            detail = getattr(request.ctx, "error_detail", None)
            log.log(
                level,
                "method=%s route=%s status=%s latency_ms=%.2f%s%s",
                request.method,
                route,
                status,
                elapsed * 1000,
                f" code={code}" if code else "",
                f" error={detail}" if detail else "",
                extra={
                    "method": request.method,
                    "route": route,
                    "status": status,
                    "latency_ms": round(elapsed * 1000, 2),
                    **({"code": code} if code else {}),
                },
            )
        token = getattr(request.ctx, "log_context", None)
        if token is not None:
            request.ctx.log_context = None
            try:
                reset_log_context(token)
            except ValueError:  # set in another context (a keep-alive connection's next task): harmless
                pass

    settings = app.ctx.settings
    app.config.CORS_ORIGINS = ",".join(settings.cors_origins)
    app.config.CORS_ALLOW_HEADERS = ["Authorization", "Content-Type", "X-Request-ID", "Idempotency-Key", "Prefer"]
    app.config.CORS_EXPOSE_HEADERS = ["X-Request-ID", "Retry-After", "Location"]
