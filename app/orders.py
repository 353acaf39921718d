"""Orders and account (trader for writes, viewer for reads): validate, queue, answer.

`POST /api/v1/order` validates against exchangeInfo filters and risk limits, records a job with a
client order id, and queues `orders.place` (services/jobs.CREATE: one script that also claims the
Idempotency-Key and the client order id); it then waits (up to ORDER_SYNC_WAIT) for the outcome and
answers the order, or answers 202 with the job — async requests, retried or not, always get the job.
Every signed call runs in a worker, waited for up to UPSTREAM_TIMEOUT (then 504: WORKER_TIMEOUT for
reads, OUTCOME_UNKNOWN for cancels) and charged to the client's weight quota (app/quotas.py).
"""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

from sanic import Blueprint, Request

from binance_client import endpoints
from services.filters import MARKET_LIKE, OrderInvalid, check_client_order_id, check_order
from services.jobs import FAILED, SUCCEEDED, ClientOrderIdInUse, new_job, public_view
from services.risk import Valuation, limits_refusal, needs_reference, order_value

from . import schemas as S
from .auth import Role, json_body
from .envelope import ok
from .errors import ApiError, GatewayTimeout, NotFound, from_failure, invalid
from .market import int_arg
from .schemas import documented

MAX_SCHEDULE_AHEAD_MS = 7 * 86_400_000

reads = Blueprint("account_reads", url_prefix="/api/v1")     # viewer
writes = Blueprint("order_writes", url_prefix="/api/v1")     # trader


def _order_ref(request: Request, source: dict) -> tuple[int | None, str | None]:
    order_id = source.get("orderId")
    client_id = source.get("clientOrderId") or source.get("origClientOrderId")
    if order_id is not None:
        try:
            order_id = int(order_id)
        except (TypeError, ValueError):
            raise invalid("orderId", "'orderId' must be an integer") from None
    try:
        client_id = check_client_order_id(client_id)
    except OrderInvalid as exc:
        raise invalid(exc.field, exc.message) from None
    if order_id is None and client_id is None:
        raise invalid("orderId", "Give 'orderId' or 'clientOrderId'")
    return order_id, client_id


def _job_answer(request: Request, job: dict, replayed: bool = False):
    """A sync request's answer: the order (201) once placed, its error once failed, else 202 + the job."""
    headers = _job_headers(job, replayed)
    if job["status"] == SUCCEEDED:
        return ok(request, {**job["order"], "jobId": job["id"]}, 201, headers)
    if job["status"] == FAILED:
        error = from_failure(job["error"])
        error.details = {**error.details, "jobId": job["id"]}
        raise error
    return ok(request, public_view(job), 202, headers)


def _job_headers(job: dict, replayed: bool) -> dict:
    return {"Location": f"/api/v1/jobs/{job['id']}", **({"Idempotent-Replayed": "true"} if replayed else {})}


@writes.post("/order")
@documented("Place an order (waits for the outcome unless `Prefer: respond-async`)", S.OrderResult,
            "OrderResponse", tag="orders", errors=(400, 401, 403, 409, 429, 503, 504))
async def place_order(request: Request):
    ctx = request.app.ctx
    body = json_body(request)
    idempotency_key = request.headers.get("Idempotency-Key")
    if idempotency_key is not None and not (1 <= len(idempotency_key) <= 128):
        raise invalid("Idempotency-Key", "The Idempotency-Key header must be 1-128 characters")
    execute_at = body.get("executeAt")
    async_mode = execute_at is not None or "respond-async" in request.headers.get("Prefer", "")
    owner = request.ctx.principal.sub
    if idempotency_key is not None:
        # a retry is answered with the first request's job before anything is checked or counted again
        existing = await ctx.jobs.by_idempotency_key(owner, idempotency_key)
        if existing is not None:
            return await _settle(request, existing, async_mode, replayed=True)
    job = await intake(ctx, body, owner, execute_at)
    task = None if execute_at is not None else ctx.dispatch.task("orders.place", job["id"], queue="orders")
    try:
        job, created = await ctx.jobs.create(job, idempotency_key, task)  # one script: key, job and task
    except ClientOrderIdInUse as exc:
        raise ApiError(f"clientOrderId '{exc.client_order_id}' is already used by another order",
                       code="CLIENT_ORDER_ID_IN_USE", status=409,
                       details={"field": "clientOrderId", "clientOrderId": exc.client_order_id}) from None
    return await _settle(request, job, async_mode, replayed=not created)


async def _settle(request: Request, job: dict, async_mode: bool, replayed: bool):
    """The answer. Async (and scheduled) requests always get 202 + the job — the order inside once it
    is known — so a retried request gets what the first one got; sync requests wait for the outcome
    (up to ORDER_SYNC_WAIT) and get the order, its error, or 202 + the job."""
    ctx = request.app.ctx
    if async_mode:
        return ok(request, public_view(job), 202, _job_headers(job, replayed))
    final = await ctx.job_watcher.wait(job["id"], ctx.settings.order_sync_wait, lambda: ctx.jobs.get(job["id"]))
    return _job_answer(request, final or await ctx.jobs.get(job["id"]) or job, replayed)


async def intake(ctx, body: dict, owner: str, execute_at) -> dict:
    """Validate an order (filters, kill switch, risk limits) and make its job; raises the ApiError a
    client gets. Orders are valued in USDT at the worse of their own prices and the last price
    (services/risk.py); the worker applies the same rules again right before sending."""
    symbol = await ctx.market.symbol(body.get("symbol"))
    symbols = await ctx.market.symbols_by_name()
    info = symbols[symbol]
    halted, limits = await ctx.risk.state()  # one round trip per order
    market_like = str(body.get("type", "")).upper() in MARKET_LIKE
    reference = None
    if market_like or needs_reference(limits):
        reference = Decimal((await ctx.market.ticker_price(symbol, None))["price"])
    try:
        checked = check_order(body, info, reference if market_like else None)
        client_id = check_client_order_id(body.get("clientOrderId"))
    except OrderInvalid as exc:
        raise invalid(exc.field, exc.message, **({"rule": exc.rule} if exc.rule else {})) from None
    if execute_at is not None:
        now = int(time.time() * 1000)
        if isinstance(execute_at, bool) or not isinstance(execute_at, int) or \
                not now < execute_at <= now + MAX_SCHEDULE_AHEAD_MS:
            raise invalid("executeAt", "'executeAt' must be a future time in ms, at most 7 days ahead")
    if halted is not None:
        raise from_failure(halted)
    valuation = Valuation.for_symbol(info, symbols)
    value = None
    if needs_reference(limits) and valuation is not None:
        value = order_value(checked.request, reference)
        if value is not None and valuation.via is not None:
            via_price = Decimal((await ctx.market.ticker_price(valuation.via, None))["price"])
            value = valuation.to_usdt(value, via_price)
    refusal = limits_refusal(limits, symbol, value, valuation) or await ctx.risk.rate_refusal(owner, limits)
    if refusal is not None:
        raise from_failure(refusal)
    settings = ctx.settings
    ttl = settings.order_ttl_market if checked.request["type"] == "MARKET" else settings.order_ttl
    return new_job(checked.request, client_id or f"sg-{uuid.uuid4().hex[:24]}", owner, execute_at, ttl_seconds=ttl,
                   valuation=valuation.as_json() if valuation is not None else None)


@reads.get("/jobs/<job_id:str>")
@documented("A queued order's job: queued, running, succeeded (with the order) or failed (with the error)",
            S.Job, "JobResponse", tag="orders", errors=(401, 403, 404))
async def get_job(request: Request, job_id: str):
    job = await request.app.ctx.jobs.get(job_id) if len(job_id) <= 64 else None
    principal = request.ctx.principal
    if job is None or (job["owner"] != principal.sub and principal.role < Role.ADMIN):
        raise NotFound(f"No job {job_id}", code="JOB_NOT_FOUND")
    return ok(request, public_view(job))


@writes.delete("/order")
@documented("Cancel an order by orderId or clientOrderId (504 OUTCOME_UNKNOWN: look the order up)", S.Order,
            "CancelResponse", tag="orders", errors=(400, 401, 403, 404, 429, 503, 504),
            parameters=[("symbol", str, True, "Symbol"), ("orderId", int, False, "Order id"),
                        ("clientOrderId", str, False, "Client order id")])
async def cancel_order(request: Request):
    ctx = request.app.ctx
    symbol = await ctx.market.symbol(request.args.get("symbol"))
    order_id, client_id = _order_ref(request, {k: request.args.get(k) for k in ("orderId", "clientOrderId")})
    ref = {"symbol": symbol, **({"orderId": order_id} if order_id is not None else {"clientOrderId": client_id})}
    return ok(request, await cancel(ctx, "orders.cancel", (symbol, order_id, client_id), "/api/v1/order", ref))


# A worker's answer that Binance's was lost or late (services.outcomes): the cancel may have happened.
UNKNOWN_OUTCOME_CODES = ("UPSTREAM_ERROR", "UPSTREAM_TIMEOUT")


async def cancel(ctx, task: str, args: tuple, look_up: str, ref: dict):
    """Run a cancel task; whenever its outcome is unknown — no worker answer in time, or Binance's
    answer lost — the client is told so, and where to look, instead of "failed"."""
    query = "&".join(f"{k}={v}" for k, v in ref.items())

    def unknown(why: str) -> GatewayTimeout:
        return GatewayTimeout(f"{why}: the cancel's outcome is unknown — look it up (GET {look_up}?{query}) "
                              "before trying again", code="OUTCOME_UNKNOWN", retry_after=1,
                              details={"outcome": "unknown", "lookUp": f"{look_up}?{query}", **ref})

    try:
        return await ctx.dispatch.call(task, *args, queue="orders",
                                       unknown=lambda waited: unknown(f"No answer within {waited:g} s"))
    except ApiError as exc:
        if exc.code in UNKNOWN_OUTCOME_CODES:
            raise unknown(f"Binance's answer was lost ({exc.message})") from None
        raise


@reads.get("/order")
@documented("An order's current state", S.Order, "OrderStateResponse", tag="orders",
            errors=(400, 401, 403, 404, 429, 503, 504),
            parameters=[("symbol", str, True, "Symbol"), ("orderId", int, False, "Order id"),
                        ("clientOrderId", str, False, "Client order id")])
async def get_order(request: Request):
    ctx = request.app.ctx
    symbol = await ctx.market.symbol(request.args.get("symbol"))
    order_id, client_id = _order_ref(request, {k: request.args.get(k) for k in ("orderId", "clientOrderId")})
    return ok(request, await ctx.dispatch.call("account.order", symbol, order_id, client_id,
                                               weight=endpoints.get_order(symbol, order_id=order_id).weight))


@reads.get("/openOrders")
@documented("Open orders (one symbol or all)", list[S.Order], "OpenOrdersResponse", tag="orders",
            parameters=[("symbol", str, False, "Symbol")])
async def open_orders(request: Request):
    ctx = request.app.ctx
    symbol = await ctx.market.symbol(request.args.get("symbol")) if request.args.get("symbol") else None
    return ok(request, await ctx.dispatch.call("account.open_orders", symbol,
                                               weight=endpoints.open_orders(symbol).weight))


@writes.delete("/openOrders")
@documented("Cancel every open order on a symbol (504 OUTCOME_UNKNOWN: look the open orders up)",
            list[S.Order], "CancelAllResponse", tag="orders", parameters=[("symbol", str, True, "Symbol")])
async def cancel_open_orders(request: Request):
    ctx = request.app.ctx
    symbol = await ctx.market.symbol(request.args.get("symbol"))
    return ok(request, await cancel(ctx, "orders.cancel_all", (symbol,), "/api/v1/openOrders", {"symbol": symbol}))


@reads.get("/allOrders")
@documented("Order history of a symbol", list[S.Order], "AllOrdersResponse", tag="orders",
            parameters=[("symbol", str, True, "Symbol"), ("orderId", int, False, "From this order id"),
                        ("startTime", int, False, "ms"), ("endTime", int, False, "ms"),
                        ("limit", int, False, "1-1000, default 500")])
async def all_orders(request: Request):
    ctx = request.app.ctx
    symbol = await ctx.market.symbol(request.args.get("symbol"))
    return ok(request, await ctx.dispatch.call(
        "account.all_orders", symbol, int_arg(request, "orderId", None, 0, 2**63),
        int_arg(request, "startTime", None, 0, 2**53), int_arg(request, "endTime", None, 0, 2**53),
        int_arg(request, "limit", 500, 1, 1000), weight=endpoints.all_orders(symbol).weight))


@reads.get("/myTrades")
@documented("Your trades on a symbol", list[S.MyTrade], "MyTradesResponse", tag="orders",
            parameters=[("symbol", str, True, "Symbol"), ("orderId", int, False, "Only this order"),
                        ("startTime", int, False, "ms"), ("endTime", int, False, "ms"),
                        ("fromId", int, False, "From this trade id"), ("limit", int, False, "1-1000, default 500")])
async def my_trades(request: Request):
    ctx = request.app.ctx
    symbol = await ctx.market.symbol(request.args.get("symbol"))
    return ok(request, await ctx.dispatch.call(
        "account.trades", symbol, int_arg(request, "orderId", None, 0, 2**63),
        int_arg(request, "startTime", None, 0, 2**53), int_arg(request, "endTime", None, 0, 2**53),
        int_arg(request, "fromId", None, 0, 2**63), int_arg(request, "limit", 500, 1, 1000),
        weight=endpoints.my_trades(symbol).weight))


@reads.get("/account")
@documented("Balances (non-zero) and trading permissions", S.Account, "AccountResponse", tag="account")
async def account(request: Request):
    data = await request.app.ctx.dispatch.call("account.get", weight=endpoints.account().weight)
    return ok(request, {
        "balances": [b for b in data.get("balances", []) if Decimal(b["free"]) or Decimal(b["locked"])],
        "canTrade": data.get("canTrade"), "updateTime": data.get("updateTime"),
        "commissionRates": data.get("commissionRates"), "accountType": data.get("accountType"),
    })
