"""The OpenAPI document at /docs/openapi.json, built from the routes' own declarations.

    @bp.get("/klines")
    @operation("Candles, oldest first", tag="market", query=KLINES, data=S.CANDLES, errors=UPSTREAM)
    async def klines(request, q): ...        q = KLINES parsed: canonical, bounded, symbols resolved

A route's parameters are declared once (app/params.py) and feed both its parser and this document.
The statuses a route can answer come from what it is: a protected blueprint (app.auth.protect) adds
401 and 503 (the revocation list), 403 above the viewer role; parameters add 400; a JSON body adds
400, 413 and 415; `errors` names the rest (404, 429, 504, ...). Symbols are enums of the symbols
exchangeInfo lists right now, so the document changes when Binance lists or delists one.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from sanic import Request, Sanic

from . import schemas as S
from .params import Query

OPENAPI_VERSION = "3.1.0"
STATUS_TEXT = {
    200: "Success",
    201: "Created",
    202: "Accepted: queued, see the job",
    400: "Bad input (INVALID_PARAMETER naming the field, INVALID_SYMBOL), or a rule of the exchange, the risk "
    "limits or the account refused it (FILTER_FAILURE, INSUFFICIENT_BALANCE, BINANCE_REJECTED, ...)",
    401: "No, bad, expired or revoked token (TOKEN_*), or wrong credentials",
    403: "Role too low (ROLE_REQUIRED), or trading halted (KILL_SWITCH_ENGAGED)",
    404: "No such job or order",
    409: "Conflict with the current state",
    413: "Request body larger than REQUEST_MAX_SIZE (PAYLOAD_TOO_LARGE)",
    415: "The body is not Content-Type: application/json (UNSUPPORTED_MEDIA_TYPE)",
    429: "A limit of ours or Binance's (Retry-After)",
    501: "This gateway only verifies tokens (TOKEN_ISSUING_DISABLED)",
    503: "Redis or Binance unavailable, or Binance banned the IP (Retry-After)",
    504: "Binance or a worker did not answer in time",
}
PATH_PARAM_RE = re.compile(r"<(\w+)(?::[^>]+)?>")


@dataclass(frozen=True)
class Operation:
    """What one handler declares about itself."""

    summary: str
    tag: str
    responses: dict[int, dict]
    query: Query | None = None
    path: Query | None = None
    body: dict | None = None
    errors: tuple[int, ...] = ()
    description: str = ""
    headers: tuple[dict, ...] = ()
    links: dict[int, dict] = field(default_factory=dict)
    example: dict | None = None

    def statuses(self, role) -> list[int]:
        statuses = set(self.errors)
        if role is not None:
            statuses |= {401, 503}
            if int(role) > 1:
                statuses.add(403)
        if (self.query and self.query.params) or (self.path and self.path.params):
            statuses.add(400)
        if self.body is not None:
            statuses |= {400, 413, 415}
        return sorted(statuses)

    def document(self, name: str, role, symbols: list[str] | None) -> dict:
        responses = {}
        for status, schema in self.responses.items():
            responses[str(status)] = {
                "description": STATUS_TEXT.get(status, "Success"),
                "content": {"application/json": {"schema": schema}},
            }
            if status in self.links:
                responses[str(status)]["links"] = self.links[status]
        for status in self.statuses(role):
            responses[str(status)] = {
                "description": STATUS_TEXT[status],
                "content": {"application/json": {"schema": S.ERROR}},
            }
        doc: dict = {"operationId": name, "summary": self.summary, "tags": [self.tag], "responses": responses}
        if self.description:
            doc["description"] = self.description
        parameters = [
            *(self.path.document(symbols) if self.path else []),
            *(self.query.document(symbols) if self.query else []),
            *self.headers,
        ]
        if parameters:
            doc["parameters"] = parameters
        if self.body is not None:
            content: dict = {"schema": S.resolve(self.body, symbols)}
            if self.example is not None:
                content["example"] = self.example
            doc["requestBody"] = {"required": True, "content": {"application/json": content}}
        if role is not None:
            doc["security"] = [{"bearer": []}]
        return doc


def operation(
    summary: str,
    *,
    tag: str,
    data: dict | None = None,
    status: int = 200,
    responses: dict[int, dict] | None = None,
    query: Query | None = None,
    path: Query | None = None,
    body: dict | None = None,
    errors: tuple[int, ...] = (),
    description: str = "",
    headers: tuple[dict, ...] = (),
    links: dict[int, dict] | None = None,
    example: dict | None = None,
):
    """Declare a handler's summary, parameters, body and answers. With `query`, the handler is called
    as `handler(request, q, **path_args)` with `q` the parsed parameters; with `path`, the path
    arguments are checked by their declarations first."""
    answers = dict(responses or {})
    if data is not None:
        answers[status] = S.envelope(data)

    def wrap(handler):
        declared = Operation(
            summary,
            tag,
            answers,
            query,
            path,
            body,
            tuple(errors),
            description,
            tuple(headers),
            dict(links or {}),
            example,
        )

        @functools.wraps(handler)
        async def run(request: Request, **path_args):
            if path is not None:
                for param in path.params:
                    raw = path_args.get(param.name)
                    path_args[param.name] = param.parse(None if raw is None else unquote(raw))
            if query is not None:
                return await handler(request, await query.parse(request), **path_args)
            return await handler(request, **path_args)

        run.__api__ = declared
        return run

    return wrap


def build_document(app: Sanic, symbols: list[str] | None) -> dict:
    """The whole document for `app`'s routes; `symbols` (None when exchangeInfo is unreachable) become enums."""
    paths: dict[str, dict] = {}
    names: set[str] = set()
    for route in app.router.routes:
        declared: Operation | None = getattr(route.handler, "__api__", None)
        if declared is None:
            continue
        name = _camel(route.handler.__name__)
        assert name not in names, f"two routes are both named {name}"
        names.add(name)
        blueprint = app.blueprints.get(route.name.split(".")[1]) if route.name.count(".") >= 2 else None
        role = getattr(blueprint.ctx, "required_role", None) if blueprint is not None else None
        path = "/" + PATH_PARAM_RE.sub(r"{\1}", route.path).lstrip("/")
        for method in sorted(route.methods - {"OPTIONS", "HEAD"}):
            paths.setdefault(path, {})[method.lower()] = declared.document(name, role, symbols)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "spotgate",
            "version": "1",
            "description": "A self-hosted gateway for Binance Spot. Decimals are strings; times are "
            "milliseconds since the epoch. Every answer is one JSON object: "
            "`{data, requestId, timestamp}` or `{error: {code, message, details}, "
            "requestId, timestamp}`.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)
