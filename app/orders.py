"""Orders and account (trader for writes, viewer for reads): validate, queue, answer.

`POST /api/v1/order` validates against exchangeInfo filters and risk limits, records a job with a
client order id, and queues `orders.place`; it then waits (up to ORDER_SYNC_WAIT) for the outcome
and answers the order, or answers 202 with the job. Every signed call runs in a worker.
"""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

from sanic import Blueprint, Request

from services.filters import OrderInvalid, check_client_order_id, check_order
from services.jobs import FAILED, SUCCEEDED, new_job, public_view

from . import schemas as S
from .auth import Role, json_body
from .envelope import ok
from .errors import NotFound, from_failure, invalid
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


def _job_answer(request: Request, job: dict, status_if_pending: int = 202):
    location = {"Location": f"/api/v1/jobs/{job['id']}"}
    if job["status"] == SUCCEEDED:
        return ok(request, {**job["order"], "jobId": job["id"]}, 201, location)
    if job["status"] == FAILED:
        error = from_failure(job["error"])
        error.details = {**error.details, "jobId": job["id"]}
        raise error
    return ok(request, public_view(job), status_if_pending, location)


@writes.post("/order")
@documented("Place an order (waits for the outcome unless `Prefer: respond-async`)", S.OrderResult,
            "OrderResponse", tag="orders", errors=(400, 401, 403, 429, 503, 504))
async def place_order(request: Request):
    ctx = request.app.ctx
    body = json_body(request)
    symbol = await ctx.market.symbol(body.get("symbol"))
    info = (await ctx.market.symbols_by_name())[symbol]
    reference = None
    if str(body.get("type", "")).upper() in ("MARKET", "STOP_LOSS", "TAKE_PROFIT"):
        reference = Decimal((await ctx.market.ticker_price(symbol, None))["price"])
    try:
        checked = check_order(body, info, reference)
        client_id = check_client_order_id(body.get("clientOrderId"))
    except OrderInvalid as exc:
        raise invalid(exc.field, exc.message, **({"rule": exc.rule} if exc.rule else {})) from None
    execute_at = body.get("executeAt")
    if execute_at is not None:
        now = int(time.time() * 1000)
        if isinstance(execute_at, bool) or not isinstance(execute_at, int) or not now < execute_at <= now + MAX_SCHEDULE_AHEAD_MS:
            raise invalid("executeAt", "'executeAt' must be a future time in ms, at most 7 days ahead")
    owner = request.ctx.principal.sub
    refusal = await ctx.risk.refusal(owner, symbol, checked.notional)
    if refusal is not None:
        raise from_failure(refusal)
    idempotency_key = request.headers.get("Idempotency-Key")
    if idempotency_key is not None and not (1 <= len(idempotency_key) <= 128):
        raise invalid("Idempotency-Key", "The Idempotency-Key header must be 1-128 characters")
    job = new_job(checked.request, client_id or f"sg-{uuid.uuid4().hex[:24]}", owner, execute_at)
    task = None if execute_at is not None else ctx.dispatch.task("orders.place", job["id"], queue="orders")
    job, _ = await ctx.jobs.create(job, idempotency_key, task)  # one MULTI: the job and its task, or neither
    if execute_at is not None or "respond-async" in request.headers.get("Prefer", ""):
        return _job_answer(request, job)
    final = await ctx.job_watcher.wait(job["id"], ctx.settings.order_sync_wait, lambda: ctx.jobs.get(job["id"]))
    return _job_answer(request, final or await ctx.jobs.get(job["id"]) or job)


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
@documented("Cancel an order by orderId or clientOrderId", S.Order, "CancelResponse", tag="orders",
            parameters=[("symbol", str, True, "Symbol"), ("orderId", int, False, "Order id"),
                        ("clientOrderId", str, False, "Client order id")])
async def cancel_order(request: Request):
    ctx = request.app.ctx
    symbol = await ctx.market.symbol(request.args.get("symbol"))
    order_id, client_id = _order_ref(request, {k: request.args.get(k) for k in ("orderId", "clientOrderId")})
    order = await ctx.dispatch.call("orders.cancel", symbol, order_id, client_id, queue="orders")
    return ok(request, order)


@reads.get("/order")
@documented("An order's current state", S.Order, "OrderStateResponse", tag="orders",
            parameters=[("symbol", str, True, "Symbol"), ("orderId", int, False, "Order id"),
                        ("clientOrderId", str, False, "Client order id")])
async def get_order(request: Request):
    ctx = request.app.ctx
    symbol = await ctx.market.symbol(request.args.get("symbol"))
    order_id, client_id = _order_ref(request, {k: request.args.get(k) for k in ("orderId", "clientOrderId")})
    return ok(request, await ctx.dispatch.call("account.order", symbol, order_id, client_id))


@reads.get("/openOrders")
@documented("Open orders (one symbol or all)", list[S.Order], "OpenOrdersResponse", tag="orders",
            parameters=[("symbol", str, False, "Symbol")])
async def open_orders(request: Request):
    ctx = request.app.ctx
    symbol = await ctx.market.symbol(request.args.get("symbol")) if request.args.get("symbol") else None
    return ok(request, await ctx.dispatch.call("account.open_orders", symbol))


@writes.delete("/openOrders")
@documented("Cancel every open order on a symbol", list[S.Order], "CancelAllResponse", tag="orders",
            parameters=[("symbol", str, True, "Symbol")])
async def cancel_open_orders(request: Request):
    ctx = request.app.ctx
    symbol = await ctx.market.symbol(request.args.get("symbol"))
    return ok(request, await ctx.dispatch.call("orders.cancel_all", symbol, queue="orders"))


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
        int_arg(request, "limit", 500, 1, 1000)))


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
        int_arg(request, "fromId", None, 0, 2**63), int_arg(request, "limit", 500, 1, 1000)))


@reads.get("/account")
@documented("Balances (non-zero) and trading permissions", S.Account, "AccountResponse", tag="account")
async def account(request: Request):
    data = await request.app.ctx.dispatch.call("account.get")
    return ok(request, {
        "balances": [b for b in data.get("balances", []) if Decimal(b["free"]) or Decimal(b["locked"])],
        "canTrade": data.get("canTrade"), "updateTime": data.get("updateTime"),
        "commissionRates": data.get("commissionRates"), "accountType": data.get("accountType"),
    })
