"""Risk limits and the kill switch (admin): read and change them; engaging cancels every open order.

Both live in Redis (services.risk), so every web process and worker applies them at once and an
engaged kill switch survives restarts. While engaged, orders are refused with 403
KILL_SWITCH_ENGAGED by the web tier before queueing and by the worker right before sending.
"""

from __future__ import annotations

from sanic import Blueprint, Request

from services.contract.tasks import TaskName
from services.errors import LimitsInvalid
from services.risk import validate_limits

from . import schemas as S
from .auth import json_body
from .envelope import ok
from .errors import ApiError, GatewayTimeout, from_service, invalid
from .openapi import operation

MAX_REASON = 256
# Canceling everything takes up to 3 listings and a cancel per symbol: the request waits for it up to
# this many UPSTREAM_TIMEOUTs. The task itself has no deadline: it runs to the end even when late.
KILL_SWITCH_WAIT_FACTOR = 3

bp = Blueprint("risk", url_prefix="/api/v1")  # admin


@bp.get("/risk/limits")
@operation("Current risk limits (null = no limit)", tag="risk", data=S.RISK_LIMITS)
async def get_limits(request: Request):
    return ok(request, await request.app.ctx.risk.limits())


@bp.put("/risk/limits")
@operation(
    "Replace the risk limits (a missing or null field means no limit)",
    tag="risk",
    body=S.RISK_LIMITS_REQUEST,
    data=S.RISK_LIMITS,
)
async def put_limits(request: Request):
    ctx = request.app.ctx
    try:
        limits = validate_limits(json_body(request), set(await ctx.market.symbols_by_name()))
    except LimitsInvalid as exc:
        raise from_service(exc) from None
    return ok(request, await ctx.risk.set_limits(limits))


@bp.get("/admin/kill-switch")
@operation("Whether trading is halted, since when, by whom and why", tag="risk", data=S.KILL_SWITCH)
async def get_kill_switch(request: Request):
    return ok(request, await request.app.ctx.risk.kill_switch())


@bp.post("/admin/kill-switch")
@operation(
    "Engage (halt trading and cancel every open order) or disengage the kill switch",
    tag="risk",
    body=S.KILL_SWITCH_REQUEST,
    data=S.KILL_SWITCH_CHANGE,
    errors=(429, 503, 504),
)
async def set_kill_switch(request: Request):
    body = json_body(request)
    unknown = sorted(set(body) - {"engaged", "reason"})
    if unknown:
        raise invalid(unknown[0], f"Unknown field '{unknown[0]}': the kill switch takes 'engaged' and 'reason'")
    engaged, reason = body.get("engaged"), body.get("reason")
    if not isinstance(engaged, bool):
        raise invalid("engaged", "'engaged' must be true or false")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
        raise invalid("reason", f"'reason' must be a string of at most {MAX_REASON} characters")
    return ok(request, await switch(request.app.ctx, engaged, request.ctx.principal.sub, reason))


async def switch(ctx, engaged: bool, by: str, reason: str | None) -> dict:
    """Record the new state first (new orders stop at once, everywhere), then cancel what is open.

    A failed cancel leaves the switch engaged and says so; engaging again retries the cancel.
    """
    state = await ctx.risk.set_kill_switch(engaged, by, reason)
    if not engaged:
        return {**state, "canceled": []}
    try:
        canceled = await ctx.dispatch.call(
            TaskName.CANCEL_EVERYTHING,
            queue="orders",
            deadline=False,
            wait=ctx.settings.upstream_timeout * KILL_SWITCH_WAIT_FACTOR,
            unknown=lambda waited: GatewayTimeout(
                f"No answer within {waited:g} s: canceling open orders goes on in a worker — look them up "
                "(GET /api/v1/openOrders); engaging again cancels what is left",
                code="OUTCOME_UNKNOWN",
                retry_after=1,
                details={"outcome": "unknown", "waitedSeconds": waited, "lookUp": "/api/v1/openOrders"},
            ),
        )
    except ApiError as exc:
        exc.message = f"The kill switch is engaged, but canceling open orders failed: {exc.message}"
        exc.details = {**exc.details, "killSwitch": state}
        raise
    return {**state, "canceled": canceled}
