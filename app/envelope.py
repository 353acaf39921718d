"""The response envelope every REST answer uses: `{"data", "requestId", "timestamp"}` on success,
`{"error": {"code", "message", "details"}, "requestId", "timestamp"}` on failure (timestamps in ms)."""

from __future__ import annotations

import time

import orjson
from sanic import Request
from sanic.response import HTTPResponse


def now_ms() -> int:
    return int(time.time() * 1000)


def request_id(request: Request) -> str:
    return getattr(request.ctx, "request_id", None) or "-"


def error_body(request: Request, code: str, message: str, details: dict | None = None) -> dict:
    return {
        "error": {"code": code, "message": message, "details": details or {}},
        "requestId": request_id(request),
        "timestamp": now_ms(),
    }


def json_response(request: Request, body: dict, status: int = 200, headers: dict | None = None) -> HTTPResponse:
    headers = dict(headers or {})
    headers["X-Request-ID"] = request_id(request)
    return HTTPResponse(orjson.dumps(body), status=status, headers=headers, content_type="application/json")


def ok(request: Request, data, status: int = 200, headers: dict | None = None) -> HTTPResponse:
    return json_response(
        request, {"data": data, "requestId": request_id(request), "timestamp": now_ms()}, status, headers
    )
