"""Orders and account (trader for writes, viewer for reads): validate, queue, answer.

`POST /api/v1/order` validates against exchangeInfo filters and risk limits, records a job with a
client order id, and queues `orders.place` (services/jobs.CREATE: one script that also claims the
Idempotency-Key and the client order id); it then waits (up to ORDER_SYNC_WAIT) for the outcome and
answers the order, or answers 202 with the job — async requests, retried or not, always get the job.
Every signed call runs in a worker, waited for up to UPSTREAM_TIMEOUT (then 504: WORKER_TIMEOUT for
reads, OUTCOME_UNKNOWN for cancels) and charged to the client's weight quota (app/quotas.py).
"""

from __future__ import annotations

import re
import time
import uuid
from decimal import Decimal

from sanic import Blueprint, Request

from binance_client import endpoints
from services.contract.tasks import TaskName
from services.errors import ClientOrderIdInUse, OrderInvalid
from services.filters import CLIENT_ID_PATTERN, MARKET_LIKE, TYPES, check_client_order_id, check_order, json_integer
from services.jobs import FAILED, SUCCEEDED, new_job, public_view
from services.risk import Valuation, limits_refusal, needs_reference, order_value

from . import schemas as S
from .auth import Role, json_body
from .envelope import ok
from .errors import ApiError, BadRequest, GatewayTimeout, NotFound, from_failure, from_service, invalid
from .openapi import operation
from .params import MAX_TIME_MS, Integer, Query, Symbol, Text

MAX_SCHEDULE_AHEAD_MS = 7 * 86_400_000
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,128}$")

reads = Blueprint("account_reads", url_prefix="/api/v1")  # viewer
writes = Blueprint("order_writes", url_prefix="/api/v1")  # trader


JOB_ID = Text(
    "job_id", "The job's id, as POST /api/v1/order answered it", location="path", pattern="[0-9a-f]{32}", max_length=32
)
CLIENT_ORDER_ID = Text("clientOrderId", "Client order id", pattern=CLIENT_ID_PATTERN.strip("^$"), max_length=36)
ORDER_REF = Query(Symbol("symbol", required=True), Integer("orderId", "Order id"), CLIENT_ORDER_ID)
LIMIT = Integer("limit", "Rows, 1-1000", default=500, ge=1, le=1000)
START = Integer("startTime", "From this time (ms)", le=MAX_TIME_MS)
END = Integer("endTime", "Until (ms)", le=MAX_TIME_MS)
ALL_ORDERS = Query(Symbol("symbol", required=True), Integer("orderId", "From this order id"), START, END, LIMIT)
MY_TRADES = Query(
    Symbol("symbol", required=True),
    Integer("orderId", "Only this order's trades"),
    START,
    END,
    Integer("fromId", "From this trade id"),
    LIMIT,
)
ONE_SYMBOL = Query(Symbol("symbol", required=True))
ANY_SYMBOL = Query(Symbol("symbol", "One symbol; all when absent"))
WORKER = (404, 429, 503, 504)  # a signed call: unknown order, Binance limits, upstream or worker trouble
ORDER_REF_TEXT = "Give `orderId` or `clientOrderId` (400 ORDER_REFERENCE_REQUIRED without either)."


def _order_ref(q: dict) -> tuple[int | None, str | None]:
    if q["orderId"] is None and q["clientOrderId"] is None:
        raise BadRequest(
            "Give 'orderId' or 'clientOrderId'", code="ORDER_REFERENCE_REQUIRED", details={"field": "orderId"}
        )
    return q["orderId"], q["clientOrderId"]


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


ORDER_HEADERS = (
    {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "A retry with the same key (per token subject, 24 h) answers the same job",
        "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[\\x21-\\x7e]{1,128}$"},
    },
    # RFC 7240: preferences a server does not know are ignored, so any text is valid here.
    {
        "name": "Prefer",
        "in": "header",
        "required": False,
        "description": "`respond-async`: answer 202 at once",
        "schema": {"type": "string"},
    },
)
JOB_LINK = {"GetJob": {"operationId": "getJob", "parameters": {"job_id": "$response.body#/data/id"}}}


@writes.post("/order")
@operation(
    "Place an order (waits for the outcome unless `Prefer: respond-async`)",
    tag="orders",
    body=S.ORDER_REQUEST,
    headers=ORDER_HEADERS,
    example={"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "10000"},
    responses={201: S.envelope(S.ORDER_RESULT), 202: S.envelope(S.JOB)},
    errors=(403, 404, 409, 429, 503, 504),
    links={
        202: JOB_LINK,
        201: {"GetJob": {"operationId": "getJob", "parameters": {"job_id": "$response.body#/data/jobId"}}},
    },
    description="Rules the schema cannot carry answer 400 with their own code: the symbol's filters and "
    "status (FILTER_FAILURE), `executeAt` outside the next 7 days (EXECUTE_AT_OUT_OF_RANGE), "
    "the risk limits (RISK_*), Binance's answer (INSUFFICIENT_BALANCE, BINANCE_REJECTED, ...). "
    "409: the clientOrderId is used by another order (CLIENT_ORDER_ID_IN_USE), or the order "
    "could not be sent before its time-to-live (ORDER_EXPIRED).",
)
async def place_order(request: Request):
    ctx = request.app.ctx
    body = json_body(request)
    idempotency_key = request.headers.get("Idempotency-Key")
    if idempotency_key is not None and not IDEMPOTENCY_KEY_RE.match(idempotency_key):
        raise invalid("Idempotency-Key", "The Idempotency-Key header must be 1-128 visible ASCII characters")
    execute_at = body.get("executeAt")
    if execute_at is not None:
        execute_at = json_integer(execute_at)
        if execute_at is None or not 0 <= execute_at <= S.MAX_SCHEDULE_MS:
            raise invalid("executeAt", "'executeAt' must be a time in ms")
    async_mode = execute_at is not None or "respond-async" in request.headers.get("Prefer", "")
    owner = request.ctx.principal.sub
    if idempotency_key is not None:
        # a retry is answered with the first request's job before anything is checked or counted again
        existing = await ctx.jobs.by_idempotency_key(owner, idempotency_key)
        if existing is not None:
            await _refuse_malformed(ctx, body)
            return await _settle(request, existing, async_mode, replayed=True)
    job = await intake(ctx, body, owner, execute_at)
    task = None if execute_at is not None else ctx.dispatch.task(TaskName.PLACE, job["id"], queue="orders")
    try:
        job, created = await ctx.jobs.create(job, idempotency_key, task)  # one script: key, job and task
    except ClientOrderIdInUse as exc:
        raise from_service(exc) from None
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


async def _listed_symbol(ctx, body: dict) -> tuple[str, dict]:
    """The order's symbol as exchangeInfo spells it, and all listed symbols by name."""
    raw_symbol = body.get("symbol")
    if not isinstance(raw_symbol, str) or not raw_symbol:
        raise invalid("symbol", "'symbol' is required and must be a string")
    symbol = await ctx.market.symbol(raw_symbol)
    return symbol, await ctx.market.symbols_by_name()


async def _refuse_malformed(ctx, body: dict) -> None:
    """A retry is answered with the first request's job, but never for a body no first request could
    have sent: what the request schema refuses (fields, types, enums, decimal forms) is refused here
    too. The symbol's rules (filters, status) are not applied again: they may have changed since the
    job was made, and the job stands."""
    symbol, symbols = await _listed_symbol(ctx, body)
    # the symbol without its rules: whatever check_order still refuses is the shape of the input
    shape_only = {**symbols[symbol], "status": "TRADING", "filters": [], "orderTypes": list(TYPES)}
    try:
        check_client_order_id(body.get("clientOrderId"))
        check_order(body, shape_only, None)
    except OrderInvalid as exc:
        raise from_service(exc) from None


async def intake(ctx, body: dict, owner: str, execute_at) -> dict:
    """Validate an order (filters, kill switch, risk limits) and make its job; raises the ApiError a
    client gets. Orders are valued in USDT at the worse of their own prices and the last price
    (services/risk.py); the worker applies the same rules again right before sending."""
    symbol, symbols = await _listed_symbol(ctx, body)
    info = symbols[symbol]
    halted, limits = await ctx.risk.state()  # one round trip per order
    market_like = body.get("type") in MARKET_LIKE
    reference = None
    if market_like or needs_reference(limits):
        reference = Decimal((await ctx.market.ticker_price(symbol, None))["price"])
    try:
        checked = check_order(body, info, reference if market_like else None)
        client_id = check_client_order_id(body.get("clientOrderId"))
    except OrderInvalid as exc:
        raise from_service(exc) from None
    if execute_at is not None:
        now = int(time.time() * 1000)
        if not now < execute_at <= now + MAX_SCHEDULE_AHEAD_MS:
            raise BadRequest(
                "'executeAt' must be a future time in ms, at most 7 days ahead",
                code="EXECUTE_AT_OUT_OF_RANGE",
                details={"field": "executeAt"},
            )
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
    return new_job(
        checked.request,
        client_id or f"sg-{uuid.uuid4().hex[:24]}",
        owner,
        execute_at,
        ttl_seconds=ttl,
        valuation=valuation.as_json() if valuation is not None else None,
    )


@reads.get("/jobs/<job_id:str>")
@operation(
    "A queued order's job: queued, running, succeeded (with the order) or failed (with the error)",
    tag="orders",
    path=Query(JOB_ID),
    data=S.JOB,
    errors=(404,),
)
async def get_job(request: Request, job_id: str):
    job = await request.app.ctx.jobs.get(job_id)
    principal = request.ctx.principal
    if job is None or (job["owner"] != principal.sub and principal.role < Role.ADMIN):
        raise NotFound(f"No job {job_id}", code="JOB_NOT_FOUND")
    return ok(request, public_view(job))


@writes.delete("/order")
@operation(
    "Cancel an order by orderId or clientOrderId",
    tag="orders",
    query=ORDER_REF,
    data=S.ORDER,
    errors=WORKER,
    description=ORDER_REF_TEXT + " 504 OUTCOME_UNKNOWN: the cancel may or may not have "
    "happened; look the order up (`details.lookUp`).",
)
async def cancel_order(request: Request, q: dict):
    order_id, client_id = _order_ref(q)
    symbol = q["symbol"]
    ref = {"symbol": symbol, **({"orderId": order_id} if order_id is not None else {"clientOrderId": client_id})}
    return ok(
        request, await cancel(request.app.ctx, TaskName.CANCEL, (symbol, order_id, client_id), "/api/v1/order", ref)
    )


# A worker's answer that Binance's was lost or late (services.outcomes): the cancel may have happened.
UNKNOWN_OUTCOME_CODES = ("UPSTREAM_ERROR", "UPSTREAM_TIMEOUT")


async def cancel(ctx, task: str, args: tuple, look_up: str, ref: dict):
    """Run a cancel task; whenever its outcome is unknown — no worker answer in time, or Binance's
    answer lost — the client is told so, and where to look, instead of "failed"."""
    query = "&".join(f"{k}={v}" for k, v in ref.items())

    def unknown(why: str) -> GatewayTimeout:
        return GatewayTimeout(
            f"{why}: the cancel's outcome is unknown — look it up (GET {look_up}?{query}) before trying again",
            code="OUTCOME_UNKNOWN",
            retry_after=1,
            details={"outcome": "unknown", "lookUp": f"{look_up}?{query}", **ref},
        )

    try:
        return await ctx.dispatch.call(
            task, *args, queue="orders", unknown=lambda waited: unknown(f"No answer within {waited:g} s")
        )
    except ApiError as exc:
        if exc.code in UNKNOWN_OUTCOME_CODES:
            raise unknown(f"Binance's answer was lost ({exc.message})") from None
        raise


@reads.get("/order")
@operation(
    "An order's current state", tag="orders", query=ORDER_REF, data=S.ORDER, errors=WORKER, description=ORDER_REF_TEXT
)
async def get_order(request: Request, q: dict):
    order_id, client_id = _order_ref(q)
    return ok(
        request,
        await request.app.ctx.dispatch.call(
            TaskName.ORDER,
            q["symbol"],
            order_id,
            client_id,
            weight=endpoints.get_order(q["symbol"], order_id=order_id).weight,
        ),
    )


@reads.get("/openOrders")
@operation("Open orders (one symbol or all)", tag="orders", query=ANY_SYMBOL, data=S.array(S.ORDER), errors=WORKER)
async def open_orders(request: Request, q: dict):
    return ok(
        request,
        await request.app.ctx.dispatch.call(
            TaskName.OPEN_ORDERS, q["symbol"], weight=endpoints.open_orders(q["symbol"]).weight
        ),
    )


@writes.delete("/openOrders")
@operation(
    "Cancel every open order on a symbol",
    tag="orders",
    query=ONE_SYMBOL,
    data=S.array(S.ORDER),
    errors=WORKER,
    description="504 OUTCOME_UNKNOWN: look the open orders up (`details.lookUp`).",
)
async def cancel_open_orders(request: Request, q: dict):
    symbol = q["symbol"]
    return ok(
        request, await cancel(request.app.ctx, TaskName.CANCEL_ALL, (symbol,), "/api/v1/openOrders", {"symbol": symbol})
    )


@reads.get("/allOrders")
@operation("Order history of a symbol", tag="orders", query=ALL_ORDERS, data=S.array(S.ORDER), errors=WORKER)
async def all_orders(request: Request, q: dict):
    return ok(
        request,
        await request.app.ctx.dispatch.call(
            TaskName.ALL_ORDERS,
            q["symbol"],
            q["orderId"],
            q["startTime"],
            q["endTime"],
            q["limit"],
            weight=endpoints.all_orders(q["symbol"]).weight,
        ),
    )


@reads.get("/myTrades")
@operation("Your trades on a symbol", tag="orders", query=MY_TRADES, data=S.array(S.MY_TRADE), errors=WORKER)
async def my_trades(request: Request, q: dict):
    return ok(
        request,
        await request.app.ctx.dispatch.call(
            TaskName.TRADES,
            q["symbol"],
            q["orderId"],
            q["startTime"],
            q["endTime"],
            q["fromId"],
            q["limit"],
            weight=endpoints.my_trades(q["symbol"]).weight,
        ),
    )


@reads.get("/account")
@operation("Balances (non-zero) and trading permissions", tag="account", data=S.ACCOUNT, errors=WORKER)
async def account(request: Request):
    data = await request.app.ctx.dispatch.call(TaskName.ACCOUNT, weight=endpoints.account().weight)
    return ok(
        request,
        {
            "balances": [b for b in data.get("balances", []) if Decimal(b["free"]) or Decimal(b["locked"])],
            "canTrade": data.get("canTrade"),
            "updateTime": data.get("updateTime"),
            "commissionRates": data.get("commissionRates"),
            "accountType": data.get("accountType"),
        },
    )
