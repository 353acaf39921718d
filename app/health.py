"""Liveness, readiness and status: what operators and load balancers poll."""

from __future__ import annotations

import asyncio
import time

from sanic import Blueprint, Request, Sanic

from binance_client.errors import BinanceError

from .envelope import ok
from .errors import ApiError
from . import schemas as S
from .openapi import operation

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
@operation("Readiness of Redis and Binance, with latencies", tag="health",
           responses={200: S.envelope(S.READINESS), 503: S.envelope(S.READINESS)})
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
    return ok(request, {
        "upstream": {"url": request.app.ctx.settings.binance_api_url, "reachable": latency is not None,
                     "latencyMs": latency, "calls": calls},
        "weight": {"usedThisMinute": await upstream.budget.used(), "budget": upstream.budget.limit,
                   "lastReportedByBinance": upstream.last_used_weight},
        "serverTimeOffsetMs": round(upstream.client.clock.offset_ms, 2),
    })


def setup_health(app: Sanic) -> None:
    from .auth import Role, protect

    protect(status_bp, Role.VIEWER)
    app.blueprint(public)
    app.blueprint(status_bp)
