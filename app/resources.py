"""The web process's shared resources, opened when a server worker starts and closed when it stops."""

from __future__ import annotations

import redis.asyncio as aioredis
from sanic import Sanic

from binance_client import AsyncBinanceClient
from binance_client.budget import AsyncWeightBudget

from services.jobs import AsyncJobStore
from services.metrics import observe_upstream
from services.risk import AsyncRiskStore

from .dispatch import Dispatcher, JobWatcher
from .market import MarketData
from .upstream import Upstream

DEFAULT_WEIGHT_LIMIT = 6000  # until exchangeInfo says otherwise


def setup_resources(app: Sanic) -> None:
    settings = app.ctx.settings

    @app.before_server_start
    async def open_resources(app_: Sanic):
        app_.ctx.redis = aioredis.Redis.from_url(settings.redis_url, health_check_interval=30)
        # Public data only: the web tier is given no API key and no secret.
        client = AsyncBinanceClient(settings.binance_api_url, timeout=settings.upstream_timeout,
                                    observer=observe_upstream)
        budget = AsyncWeightBudget(app_.ctx.redis, settings.redis_key_prefix, DEFAULT_WEIGHT_LIMIT)
        app_.ctx.upstream = Upstream(client, budget)
        app_.ctx.upstream.set_weight_limit(DEFAULT_WEIGHT_LIMIT)
        app_.ctx.market = MarketData(app_.ctx.upstream, app_.ctx.redis, settings.redis_key_prefix)
        app_.ctx.jobs = AsyncJobStore(app_.ctx.redis, settings.redis_key_prefix)
        app_.ctx.risk = AsyncRiskStore(app_.ctx.redis, settings.redis_key_prefix)
        app_.ctx.dispatch = Dispatcher(settings, app_.ctx.redis, reply_timeout=settings.upstream_timeout + 5)
        app_.ctx.job_watcher = JobWatcher(app_.ctx.redis, app_.ctx.jobs.events)
        await app_.ctx.job_watcher.start()

    @app.after_server_stop
    async def close_resources(app_: Sanic):
        await app_.ctx.job_watcher.stop()
        await app_.ctx.upstream.client.close()
        await app_.ctx.redis.aclose()
