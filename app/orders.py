"""Orders and account (trader for writes, viewer for reads): validate, queue, answer.

`POST /api/v1/order` validates against exchangeInfo filters and risk limits, records a job with a
client order id, and queues `orders.place`; it then waits (up to ORDER_SYNC_WAIT) for the outcome
and answers the order, or answers 202 with the job. Every signed call runs in a worker.
"""

from __future__ import annotations

import re
import time
import uuid
from decimal import Decimal

from sanic import Blueprint, Request

from services.filters import CLIENT_ID_PATTERN, OrderInvalid, check_client_order_id, check_order, json_integer
from services.jobs import FAILED, SUCCEEDED, new_job, public_view

from . import schemas as S
from .auth import Role, json_body
from .envelope import ok
from .errors import BadRequest, NotFound, from_failure, invalid
from .openapi import operation
from .params import MAX_TIME_MS, Integer, Query, Symbol, Text

MAX_SCHEDULE_AHEAD_MS = 7 * 86_400_000
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,128}$")

reads = Blueprint("account_reads", url_prefix="/api/v1")     # viewer
writes = Blueprint("order_writes", url_prefix="/api/v1")     # trader


JOB_ID = Text("job_id", "The job's id, as POST /api/v1/order answered it", location="path",
              pattern="[0-9a-f]{32}", max_length=32)
CLIENT_ORDER_ID = Text("clientOrderId", "Client order id", pattern=CLIENT_ID_PATTERN.strip("^$"), max_length=36)
ORDER_REF = Query(Symbol("symbol", required=True), Integer("orderId", "Order id"), CLIENT_ORDER_ID)
LIMIT = Integer("limit", "Rows, 1-1000", default=500, ge=1, le=1000)
START, END = Integer("startTime", "From this time (ms)", le=MAX_TIME_MS), Integer("endTime", "Until (ms)", le=MAX_TIME_MS)
ALL_ORDERS = Query(Symbol("symbol", required=True), Integer("orderId", "From this order id"), START, END, LIMIT)
MY_TRADES = Query(Symbol("symbol", required=True), Integer("orderId", "Only this order's trades"), START, END,
                  Integer("fromId", "From this trade id"), LIMIT)
ONE_SYMBOL = Query(Symbol("symbol", required=True))
ANY_SYMBOL = Query(Symbol("symbol", "One symbol; all when absent"))
WORKER = (404, 429, 503, 504)  # a signed call: unknown order, Binance limits, upstream or worker trouble
ORDER_REF_TEXT = "Give `orderId` or `clientOrderId` (400 ORDER_REFERENCE_REQUIRED without either)."


def _order_ref(q: dict) -> tuple[int | None, str | None]:
    if q["orderId"] is None and q["clientOrderId"] is None:
        raise BadRequest("Give 'orderId' or 'clientOrderId'", code="ORDER_REFERENCE_REQUIRED",
                         details={"field": "orderId"})
    return q["orderId"], q["clientOrderId"]


def _job_answer(request: Request, job: dict, status_if_pending: int = 202):
    location = {"Location": f"/api/v1/jobs/{job['id']}"}
    if job["status"] == SUCCEEDED:
        return ok(request, {**job["order"], "jobId": job["id"]}, 201, location)
    if job["status"] == FAILED:
        error = from_failure(job["error"])
        error.details = {**error.details, "jobId": job["id"]}
        raise error
    return ok(request, public_view(job), status_if_pending, location)


ORDER_HEADERS = (
    {"name": "Idempotency-Key", "in": "header", "required": False,
     "description": "A retry with the same key (per token subject, 24 h) answers the same job",
     "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[\\x21-\\x7e]{1,128}$"}},
    # RFC 7240: preferences a server does not know are ignored, so any text is valid here.
    {"name": "Prefer", "in": "header", "required": False, "description": "`respond-async`: answer 202 at once",
     "schema": {"type": "string"}},
)
JOB_LINK = {"GetJob": {"operationId": "getJob", "parameters": {"job_id": "$response.body#/data/id"}}}


@writes.post("/order")
@operation("Place an order (waits for the outcome unless `Prefer: respond-async`)", tag="orders",
           body=S.ORDER_REQUEST, headers=ORDER_HEADERS,
           example={"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "10000"},
           responses={201: S.envelope(S.ORDER_RESULT), 202: S.envelope(S.JOB)}, errors=(403, 404, 429, 503, 504),
           links={202: JOB_LINK, 201: {"GetJob": {"operationId": "getJob",
                                                  "parameters": {"job_id": "$response.body#/data/jobId"}}}},
           description="Rules the schema cannot carry answer 400 with their own code: the symbol's filters and "
                       "status (FILTER_FAILURE), `executeAt` outside the next 7 days (EXECUTE_AT_OUT_OF_RANGE), "
                       "the risk limits (RISK_*), Binance's answer (INSUFFICIENT_BALANCE, BINANCE_REJECTED, ...).")
async def place_order(request: Request):
    ctx = request.app.ctx
    body = json_body(request)
    raw_symbol = body.get("symbol")
    if not isinstance(raw_symbol, str) or not raw_symbol:
        raise invalid("symbol", "'symbol' is required and must be a string")
    symbol = await ctx.market.symbol(raw_symbol)
    info = (await ctx.market.symbols_by_name())[symbol]
    reference = None
    if body.get("type") in ("MARKET", "STOP_LOSS", "TAKE_PROFIT"):
        reference = Decimal((await ctx.market.ticker_price(symbol, None))["price"])
    try:
        checked = check_order(body, info, reference)
        client_id = check_client_order_id(body.get("clientOrderId"))
    except OrderInvalid as exc:
        if exc.rule:  # a rule of the symbol (filters, status, order types), not the shape of the input
            raise BadRequest(exc.message, code="FILTER_FAILURE", details={"field": exc.field, "rule": exc.rule}) \
                from None
        raise invalid(exc.field, exc.message) from None
    execute_at = body.get("executeAt")
    if execute_at is not None:
        execute_at = json_integer(execute_at)
        if execute_at is None or not 0 <= execute_at <= S.MAX_SCHEDULE_MS:
            raise invalid("executeAt", "'executeAt' must be a time in ms")
        now = int(time.time() * 1000)
        if not now < execute_at <= now + MAX_SCHEDULE_AHEAD_MS:
            raise BadRequest("'executeAt' must be a future time in ms, at most 7 days ahead",
                             code="EXECUTE_AT_OUT_OF_RANGE", details={"field": "executeAt"})
    owner = request.ctx.principal.sub
    refusal = await ctx.risk.refusal(owner, symbol, checked.notional)
    if refusal is not None:
        raise from_failure(refusal)
    idempotency_key = request.headers.get("Idempotency-Key")
    if idempotency_key is not None and not IDEMPOTENCY_KEY_RE.match(idempotency_key):
        raise invalid("Idempotency-Key", "The Idempotency-Key header must be 1-128 visible ASCII characters")
    job = new_job(checked.request, client_id or f"sg-{uuid.uuid4().hex[:24]}", owner, execute_at)
    task = None if execute_at is not None else ctx.dispatch.task("orders.place", job["id"], queue="orders")
    job, _ = await ctx.jobs.create(job, idempotency_key, task)  # one MULTI: the job and its task, or neither
    if execute_at is not None or "respond-async" in request.headers.get("Prefer", ""):
        return _job_answer(request, job)
    final = await ctx.job_watcher.wait(job["id"], ctx.settings.order_sync_wait, lambda: ctx.jobs.get(job["id"]))
    return _job_answer(request, final or await ctx.jobs.get(job["id"]) or job)


@reads.get("/jobs/<job_id:str>")
@operation("A queued order's job: queued, running, succeeded (with the order) or failed (with the error)",
           tag="orders", path=Query(JOB_ID), data=S.JOB, errors=(404,))
async def get_job(request: Request, job_id: str):
    job = await request.app.ctx.jobs.get(job_id)
    principal = request.ctx.principal
    if job is None or (job["owner"] != principal.sub and principal.role < Role.ADMIN):
        raise NotFound(f"No job {job_id}", code="JOB_NOT_FOUND")
    return ok(request, public_view(job))


@writes.delete("/order")
@operation("Cancel an order by orderId or clientOrderId", tag="orders", query=ORDER_REF, data=S.ORDER,
           errors=WORKER, description=ORDER_REF_TEXT)
async def cancel_order(request: Request, q: dict):
    order_id, client_id = _order_ref(q)
    order = await request.app.ctx.dispatch.call("orders.cancel", q["symbol"], order_id, client_id, queue="orders")
    return ok(request, order)


@reads.get("/order")
@operation("An order's current state", tag="orders", query=ORDER_REF, data=S.ORDER, errors=WORKER,
           description=ORDER_REF_TEXT)
async def get_order(request: Request, q: dict):
    order_id, client_id = _order_ref(q)
    return ok(request, await request.app.ctx.dispatch.call("account.order", q["symbol"], order_id, client_id))


@reads.get("/openOrders")
@operation("Open orders (one symbol or all)", tag="orders", query=ANY_SYMBOL, data=S.array(S.ORDER), errors=WORKER)
async def open_orders(request: Request, q: dict):
    return ok(request, await request.app.ctx.dispatch.call("account.open_orders", q["symbol"]))


@writes.delete("/openOrders")
@operation("Cancel every open order on a symbol", tag="orders", query=ONE_SYMBOL, data=S.array(S.ORDER),
           errors=WORKER)
async def cancel_open_orders(request: Request, q: dict):
    return ok(request, await request.app.ctx.dispatch.call("orders.cancel_all", q["symbol"], queue="orders"))


@reads.get("/allOrders")
@operation("Order history of a symbol", tag="orders", query=ALL_ORDERS, data=S.array(S.ORDER), errors=WORKER)
async def all_orders(request: Request, q: dict):
    return ok(request, await request.app.ctx.dispatch.call(
        "account.all_orders", q["symbol"], q["orderId"], q["startTime"], q["endTime"], q["limit"]))


@reads.get("/myTrades")
@operation("Your trades on a symbol", tag="orders", query=MY_TRADES, data=S.array(S.MY_TRADE), errors=WORKER)
async def my_trades(request: Request, q: dict):
    return ok(request, await request.app.ctx.dispatch.call(
        "account.trades", q["symbol"], q["orderId"], q["startTime"], q["endTime"], q["fromId"], q["limit"]))


@reads.get("/account")
@operation("Balances (non-zero) and trading permissions", tag="account", data=S.ACCOUNT, errors=WORKER)
async def account(request: Request):
    data = await request.app.ctx.dispatch.call("account.get")
    return ok(request, {
        "balances": [b for b in data.get("balances", []) if Decimal(b["free"]) or Decimal(b["locked"])],
        "canTrade": data.get("canTrade"), "updateTime": data.get("updateTime"),
        "commissionRates": data.get("commissionRates"), "accountType": data.get("accountType"),
    })
