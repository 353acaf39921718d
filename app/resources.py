"""The web process's shared resources, opened when a server worker starts and closed when it stops."""

from __future__ import annotations

import redis.asyncio as aioredis
from sanic import Sanic

from binance_client import AsyncBinanceClient
from binance_client.budget import AsyncWeightBudget
from config.redis_connection import redis_connection
from services.contract.limits import DEFAULT_WEIGHT_LIMIT
from services.contract.replies import REPLY_GRACE
from services.jobs import AsyncJobStore
from services.metrics import observe_upstream
from services.risk import AsyncRiskStore

from .dispatch import Dispatcher, JobWatcher
from .market import MarketData
from .quotas import ClientQuotas
from .upstream import SingleFlight, Upstream

# redis-py's asyncio pool holds at most 100 connections and raises "Too many connections" past that:
# under a few hundred concurrent requests, every command beyond the 100th became a 503. A blocking
# pool waits for a free connection instead (a command holds one well under a millisecond), and
# REDIS_POOL_WAIT bounds that wait, so a Redis that stopped answering is still a 503, never a hang.
REDIS_CONNECTIONS = 200
REDIS_WAIT_CONNECTIONS = 1000  # blocking reads (BLPOP) hold theirs for as long as they wait
REDIS_POOL_WAIT = 5.0


def longest_wait(settings) -> float:
    """The longest a request waits for a worker: the kill switch's cancel-everything (app/risk.py)."""
    from .risk import KILL_SWITCH_WAIT_FACTOR

    return settings.upstream_timeout * KILL_SWITCH_WAIT_FACTOR


def blocking_client(redis: aioredis.Redis, socket_timeout: float) -> aioredis.Redis:
    """A client of the same server, with the same connection options (TLS included), for blocking
    reads: its socket timeout must outlast the longest BLPOP (redis-py's default of 5 s does not)."""
    pool = redis.connection_pool
    return aioredis.Redis(
        connection_pool=aioredis.BlockingConnectionPool(
            connection_class=pool.connection_class,
            max_connections=REDIS_WAIT_CONNECTIONS,
            timeout=REDIS_POOL_WAIT,
            **{**pool.connection_kwargs, "socket_timeout": socket_timeout},
        )
    )


def setup_resources(app: Sanic) -> None:
    settings = app.ctx.settings

    @app.before_server_start
    async def open_resources(app_: Sanic):
        url, tls = redis_connection(settings)
        app_.ctx.redis = aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(
                url, **tls, health_check_interval=30, max_connections=REDIS_CONNECTIONS, timeout=REDIS_POOL_WAIT
            )
        )
        # Public data only: the web tier is given no API key and no secret.
        client = AsyncBinanceClient(
            settings.binance_api_url, timeout=settings.upstream_timeout, observer=observe_upstream
        )
        budget = AsyncWeightBudget(
            app_.ctx.redis,
            settings.redis_key_prefix,
            DEFAULT_WEIGHT_LIMIT,
            order_reserve=settings.upstream_order_reserve,
            cancel_reserve=settings.upstream_cancel_reserve,
        )
        app_.ctx.quotas = ClientQuotas(app_.ctx.redis, settings.redis_key_prefix, settings.client_weight_per_minute)
        app_.ctx.upstream = Upstream(client, budget, app_.ctx.quotas)
        app_.ctx.upstream.set_weight_limit(DEFAULT_WEIGHT_LIMIT)
        app_.ctx.market = MarketData(app_.ctx.upstream, app_.ctx.redis, settings.redis_key_prefix)
        app_.ctx.jobs = AsyncJobStore(app_.ctx.redis, settings.redis_key_prefix)
        app_.ctx.risk = AsyncRiskStore(app_.ctx.redis, settings.redis_key_prefix)
        app_.ctx.redis_waits = blocking_client(app_.ctx.redis, longest_wait(settings) + REPLY_GRACE + 5)
        app_.ctx.dispatch = Dispatcher(
            settings, app_.ctx.redis, app_.ctx.redis_waits, wait=settings.upstream_timeout, quotas=app_.ctx.quotas
        )
        app_.ctx.positions_cache = SingleFlight(max_entries=4)
        app_.ctx.job_watcher = JobWatcher(app_.ctx.redis, app_.ctx.jobs.events)
        await app_.ctx.job_watcher.start()

    @app.after_server_stop
    async def close_resources(app_: Sanic):
        await app_.ctx.job_watcher.stop()
        await app_.ctx.upstream.client.close()
        await app_.ctx.redis_waits.aclose()
        await app_.ctx.redis.aclose()
