"""Liveness, readiness and status: what operators, load balancers and the dashboard poll."""

from __future__ import annotations

import asyncio
import time

from sanic import Blueprint, Request, Sanic

from binance_client.budget import PRIORITIES
from binance_client.errors import BinanceError
from services.contract import relay_status
from services.contract.keys import Keys
from services.contract.tasks import QUEUES, TaskName
from services.pacing import OrderPacer

from . import schemas as S
from .envelope import ok
from .errors import ApiError
from .openapi import operation

WORKER_PING_TIMEOUT = 2.0  # seconds a status request waits for a worker to answer its ping
WORKER_PING_REUSE = 3.0  # seconds one ping's answer serves every status request of this process

public = Blueprint("health")
status_bp = Blueprint("status", url_prefix="/api/v1")


@public.get("/health")
@operation("Liveness", tag="health", data=S.HEALTH)
async def health(request: Request):
    """Liveness: the process answers."""
    return ok(request, {"status": "ok"})


async def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout=2.0)
    except Exception as exc:  # a readiness probe reports failures, it never crashes
        return {"ok": False, "error": type(exc).__name__, "latencyMs": round((time.perf_counter() - started) * 1000, 2)}
    return {"ok": True, "latencyMs": round((time.perf_counter() - started) * 1000, 2)}


@public.get("/health/ready")
@operation(
    "Readiness of Redis and Binance, with latencies",
    tag="health",
    responses={200: S.envelope(S.READINESS), 503: S.envelope(S.READINESS)},
)
async def ready(request: Request):
    """Readiness: each dependency with its latency; 503 when one is down."""
    ctx = request.app.ctx
    checks = {
        "redis": await _timed(ctx.redis.ping),
        "upstream": await _timed(ctx.upstream.ping),
    }
    healthy = all(c["ok"] for c in checks.values())
    return ok(request, {"status": "ready" if healthy else "degraded", "checks": checks}, status=200 if healthy else 503)


@status_bp.get("/status")
@operation("Upstream latency, weight used, server-time offset", tag="health", data=S.STATUS)
async def status(request: Request):
    """Upstream latency, weight used this minute and the server-time offset."""
    upstream = request.app.ctx.upstream
    calls = upstream.calls  # before our own ping below
    latency = None
    try:
        latency = round(await upstream.ping(), 2)
    except (BinanceError, ApiError):
        pass
    return ok(
        request,
        {
            "upstream": {
                "url": request.app.ctx.settings.binance_api_url,
                "reachable": latency is not None,
                "latencyMs": latency,
                "calls": calls,
            },
            "weight": {
                "usedThisMinute": await upstream.budget.used(),
                "budget": upstream.budget.limit,
                "ceilings": {p: upstream.budget.ceiling(p) for p in PRIORITIES},
                "lastReportedByBinance": upstream.last_used_weight,
            },
            "serverTimeOffsetMs": round(upstream.client.clock.offset_ms, 2),
            "streams": await _relay(request.app.ctx),
            "workers": await _workers(request.app.ctx),
            "orders": await _order_counts(request.app.ctx),
        },
    )


async def _relay(ctx) -> dict:
    """The stream relay's own report (it rewrites it every second, with a 10 s expiry)."""
    return relay_status.summary(await ctx.redis.get(Keys(ctx.settings.redis_key_prefix).stream_status))


async def _workers(ctx) -> dict:
    """Whether a worker takes tasks (a ping through the default queue, shared by the requests of the
    next few seconds so pollers cost one ping), and how many tasks wait in each queue."""
    cached = getattr(ctx, "worker_ping", None)
    if cached is None or time.monotonic() - cached[0] > WORKER_PING_REUSE:
        cached = (time.monotonic(), asyncio.ensure_future(_ping_worker(ctx)))
        ctx.worker_ping = cached
    ping = await asyncio.shield(cached[1])
    lengths = await asyncio.gather(*(ctx.redis.llen(Keys(ctx.settings.redis_key_prefix).queue(q)) for q in QUEUES))
    return {**ping, "queued": dict(zip(QUEUES, lengths, strict=True))}


async def _ping_worker(ctx) -> dict:
    started = time.perf_counter()
    try:
        await ctx.dispatch.call(TaskName.PING, wait=WORKER_PING_TIMEOUT)
    except ApiError:  # WORKER_TIMEOUT: no worker took the task in time
        return {"answering": False, "latencyMs": None}
    return {"answering": True, "latencyMs": round((time.perf_counter() - started) * 1000, 2)}


async def _order_counts(ctx) -> dict:
    """Orders sent in the current 10 s and daily windows, against the pacing limits (90 % of
    exchangeInfo's ORDERS limits) the workers apply. A status read costs no upstream weight: the
    limits come from the exchangeInfo this process already holds (Binance's defaults before that)."""
    pacer = OrderPacer(ctx.settings.redis_key_prefix)
    info = ctx.market.known_exchange_info()
    if info is not None:
        pacer.set_limits_from_exchange_info(info)
    ten, day = await ctx.redis.mget(pacer.keys(int(time.time() * 1000)))
    return {"last10s": int(ten or 0), "limit10s": pacer.per_10s, "today": int(day or 0), "limitDay": pacer.per_day}


def setup_health(app: Sanic) -> None:
    from .auth import Role, protect

    protect(status_bp, Role.VIEWER)
    app.blueprint(public)
    app.blueprint(status_bp)
