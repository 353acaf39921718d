"""The web tier's errors and the only place they become HTTP statuses and error bodies.

    ApiError(status, code, message, details)    every error a client can see
    ├── BadRequest        400  bad input, or Binance rejected the request
    ├── Unauthorized      401  no/bad token, or Binance rejected our key/signature
    ├── Forbidden         403  role too low
    ├── NotFound          404  unknown route, order or job
    ├── TooManyRequests   429  our or Binance's limits (Retry-After)
    ├── Unavailable       503  upstream banned, unreachable or failing (Retry-After when known)
    └── GatewayTimeout    504  upstream did not answer in UPSTREAM_TIMEOUT

On a WebSocket the same errors become `{"type": "error", "code", "message"[, "channel"]}` frames
(`ws_error_frame`); those that end the connection close it with `ws_close_code(exc)` (4401, 4403, ...).

`from_service(exc)` maps services/errors.py's tree onto this one (a route may also let a ServiceError
propagate: the handler maps it the same way); `from_binance(exc)` maps binance_client's error tree;
a Redis failure anywhere in a request (the gateway's shared state) is 503 REDIS_UNAVAILABLE, never a 500.
The body is always `{"error": {"code", "message", "details"}, "requestId", "timestamp"}`: never a stack
trace, never a secret.
"""

from __future__ import annotations

import logging
import math
from enum import IntEnum
from typing import TYPE_CHECKING

import orjson

from binance_client import errors as upstream
from services.errors import ClientOrderIdInUse, InvalidInput, OrderInvalid, ServiceError
from services.metrics import metrics
from services.outcomes import error_from_binance

if TYPE_CHECKING:
    from sanic import Request, Sanic
    from sanic.response import HTTPResponse

# Sanic, redis-py and the envelope (Sanic's responses) are imported where errors are rendered, not
# here: the error classes are also raised by code that must start fast without the web tier
# (`python -m app.tokens`, via app.token_codec).

log = logging.getLogger("spotgate.errors")


class ApiError(Exception):
    status = 500
    code = "INTERNAL_ERROR"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict | None = None,
        retry_after: float | None = None,
        status: int | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.details = details or {}
        self.retry_after = retry_after
        if status is not None:
            self.status = status


class BadRequest(ApiError):
    status, code = 400, "BAD_REQUEST"


class Unauthorized(ApiError):
    status, code = 401, "UNAUTHORIZED"


class Forbidden(ApiError):
    status, code = 403, "FORBIDDEN"


class NotFound(ApiError):
    status, code = 404, "NOT_FOUND"


class TooManyRequests(ApiError):
    status, code = 429, "RATE_LIMITED"


class Unavailable(ApiError):
    status, code = 503, "UPSTREAM_UNAVAILABLE"


class GatewayTimeout(ApiError):
    status, code = 504, "UPSTREAM_TIMEOUT"


def invalid(field: str, message: str, **details) -> BadRequest:
    """A 400 that names the offending field."""
    return BadRequest(message, code="INVALID_PARAMETER", details={"field": field, **details})


def from_service(exc: ServiceError) -> ApiError:
    """services/errors.py's tree onto this one: the only place a domain refusal gets its status."""
    if isinstance(exc, OrderInvalid) and exc.rule:
        # a rule of the symbol (filters, status, order types), not the shape of the input
        return BadRequest(exc.message, code="FILTER_FAILURE", details={"field": exc.field, "rule": exc.rule})
    if isinstance(exc, InvalidInput):
        return invalid(exc.field, exc.message)
    if isinstance(exc, ClientOrderIdInUse):
        return ApiError(
            exc.message,
            code=exc.code,
            status=409,
            details={"field": "clientOrderId", "clientOrderId": exc.client_order_id},
        )
    return BadRequest(exc.message, code=exc.code)


def from_binance(exc: upstream.BinanceError) -> ApiError:
    return from_failure(error_from_binance(exc))


def from_failure(error: dict) -> ApiError:
    """An error a worker stored (services.outcomes.failure) as the ApiError it stands for."""
    return ApiError(
        error["message"],
        code=error["code"],
        details=error.get("details"),
        retry_after=error.get("retryAfter"),
        status=error["httpStatus"],
    )


def count_error(exc: ApiError, transport: str) -> None:
    """spotgate_api_errors_total, and spotgate_auth_failures_total for refused tokens and logins (401s
    of our own, not Binance refusing our API key)."""
    m = metrics()
    m.api_errors.labels(exc.code).inc()
    if exc.status == 401 and not exc.code.startswith("UPSTREAM_"):
        m.auth_failures.labels(exc.code, transport).inc()


def render(request: Request, exc: ApiError, headers: dict | None = None) -> HTTPResponse:
    """The error envelope for `exc`. It cannot fail: details that do not encode (an integer beyond
    64 bits, an object) are dropped rather than turning a 400 into Sanic's plain-text 500."""
    from sanic.response import HTTPResponse

    from .envelope import error_body, json_response, now_ms, request_id

    count_error(exc, "http")
    request.ctx.error_code = exc.code  # for the access log line
    headers = dict(headers or {})
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    try:
        return json_response(request, error_body(request, exc.code, exc.message, exc.details), exc.status, headers)
    except (TypeError, ValueError, orjson.JSONEncodeError):
        log.exception(
            "could not render the details of %s (request_id=%s); sent without them", exc.code, request_id(request)
        )
    body = {
        "error": {"code": str(exc.code), "message": str(exc.message), "details": {}},
        "requestId": request_id(request),
        "timestamp": now_ms(),
    }
    headers["X-Request-ID"] = request_id(request)
    return HTTPResponse(orjson.dumps(body), status=exc.status, headers=headers, content_type="application/json")


def internal_error(request: Request, exc: BaseException) -> HTTPResponse:
    """A 500 (a bug): logged with the request id and the traceback, answered without either."""
    from .envelope import request_id

    log.error("unhandled error request_id=%s %s %s", request_id(request), request.method, request.path, exc_info=exc)
    return render(request, ApiError("Internal error"))


def setup_errors(app: Sanic) -> None:
    from redis.exceptions import RedisError
    from sanic.exceptions import MethodNotAllowed, NotFound as SanicNotFound, PayloadTooLarge, SanicException

    # Bodies are small JSON objects: Sanic's default 100 MB would let one request hold a worker's memory.
    app.config.REQUEST_MAX_SIZE = app.ctx.settings.request_max_size

    @app.exception(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return render(request, exc)

    @app.exception(ServiceError)
    async def service_error(request: Request, exc: ServiceError):
        return render(request, from_service(exc))

    @app.exception(upstream.BinanceError)
    async def binance_error(request: Request, exc: upstream.BinanceError):
        return render(request, from_binance(exc))

    @app.exception(RedisError)
    async def redis_error(request: Request, exc: RedisError):
        request.ctx.error_detail = repr(exc)  # on the request's access log line (one line per event)
        return render(
            request,
            Unavailable(
                "The gateway's state store (Redis) is unavailable; try again", code="REDIS_UNAVAILABLE", retry_after=1
            ),
        )

    @app.exception(SanicNotFound)
    async def not_found(request: Request, exc):
        return render(request, NotFound(f"No route for {request.method} {request.path}"))

    @app.exception(MethodNotAllowed)
    async def not_allowed(request: Request, exc: MethodNotAllowed):
        # RFC 9110 §15.5.6: a 405 lists the methods the resource does support.
        allowed = sorted(set(getattr(exc, "allowed_methods", None) or ()))
        return render(
            request,
            ApiError(
                f"{request.method} is not allowed on {request.path}",
                code="METHOD_NOT_ALLOWED",
                status=405,
                details={"allowed": allowed},
            ),
            {"Allow": ", ".join(allowed)},
        )

    @app.exception(PayloadTooLarge)
    async def too_large(request: Request, exc):
        limit = request.app.config.REQUEST_MAX_SIZE
        return render(
            request,
            ApiError(
                f"The request body is larger than {limit} bytes",
                code="PAYLOAD_TOO_LARGE",
                status=413,
                details={"limit": limit},
            ),
        )

    @app.exception(SanicException)
    async def sanic_error(request: Request, exc: SanicException):
        status = getattr(exc, "status_code", 500) or 500
        if status >= 500:
            return internal_error(request, exc)
        return render(request, ApiError(str(exc)[:200] or "Bad request", code="BAD_REQUEST", status=status))

    @app.exception(Exception)
    async def crash(request: Request, exc: Exception):
        return internal_error(request, exc)


# -- WebSocket error frames and close codes ----------------------------------------------------------


class WsClose(IntEnum):
    """Close codes of /ws connections (4000-4999 are the application's; 4xxx mirrors the HTTP status)."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down
    INVALID_DATA = 1007  # a text frame that is not UTF-8 (RFC 6455 8.1)
    POLICY = 1008
    INTERNAL = 1011  # server error, or no pong within the heartbeat interval
    TRY_AGAIN_LATER = 1013  # a dependency (Redis) is unavailable
    SLOW_CLIENT = 4008  # the client did not keep up with its send queue
    UNAUTHORIZED = 4401  # token missing (when required), invalid, expired or revoked
    FORBIDDEN = 4403  # role too low
    TOO_MANY_MESSAGES = 4429  # kept sending over the per-connection message rate


def ws_error_frame(exc: ApiError, channel: str | None = None) -> dict:
    frame = {"type": "error", "code": exc.code, "message": exc.message}
    if channel is not None:
        frame["channel"] = channel
    return frame


def ws_close_code(exc: ApiError) -> WsClose:
    return {
        401: WsClose.UNAUTHORIZED,
        403: WsClose.FORBIDDEN,
        429: WsClose.TOO_MANY_MESSAGES,
        503: WsClose.TRY_AGAIN_LATER,
    }.get(exc.status, WsClose.POLICY if exc.status < 500 else WsClose.INTERNAL)
