"""What a worker process holds: settings, Redis, the signing Binance client and the services.

Built on first use inside each worker process (after Celery forks), never at import time. This is
the only place the Binance API secret is read into a client.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import cached_property

import redis

from binance_client import BinanceClient, endpoints
from binance_client.budget import WeightBudget
from binance_client.errors import BinanceError
from config import Settings
from config.logging import setup_logging
from services.jobs import JobStore
from services.metrics import observe_upstream
from services.orders import Orders
from services.pacing import OrderPacer
from services.placement import Placer
from services.risk import RiskStore
from services.signed import SignedCaller
from services.user_stream import UserStreamKeys

log = logging.getLogger("spotgate.worker")
DEFAULT_WEIGHT_LIMIT = 6000


@dataclass
class Resources:
    settings: Settings

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.settings.redis_url, health_check_interval=30)

    @cached_property
    def client(self) -> BinanceClient:
        self.settings.require_binance_credentials()
        client = BinanceClient(self.settings.binance_api_url, api_key=self.settings.binance_api_key,
                               api_secret=self.settings.binance_api_secret, timeout=self.settings.upstream_timeout,
                               observer=observe_upstream)
        try:
            client.sync_time()
        except BinanceError as exc:  # the first signed call resyncs on -1021 anyway
            log.warning("could not sync the server time at start: %s", exc)
        return client

    @cached_property
    def budget(self) -> WeightBudget:
        return WeightBudget(self.redis, self.settings.redis_key_prefix, int(DEFAULT_WEIGHT_LIMIT * 0.9))

    @cached_property
    def jobs(self) -> JobStore:
        return JobStore(self.redis, self.settings.redis_key_prefix)

    @cached_property
    def risk(self) -> RiskStore:
        return RiskStore(self.redis, self.settings.redis_key_prefix)

    @cached_property
    def pacer(self) -> OrderPacer:
        pacer = OrderPacer(self.settings.redis_key_prefix)
        try:
            info = self.client.call(endpoints.exchange_info())
            pacer.set_limits_from_exchange_info(info)
            for limit in info.get("rateLimits", []):
                if limit.get("rateLimitType") == "REQUEST_WEIGHT" and limit.get("interval") == "MINUTE":
                    self.budget.limit = max(1, int(int(limit["limit"]) * 0.9))
        except BinanceError as exc:
            log.warning("exchangeInfo unavailable, pacing with Binance's default limits: %s", exc)
        return pacer

    @cached_property
    def orders(self) -> Orders:
        return Orders(SignedCaller(self.client, self.budget), self.risk)

    @cached_property
    def placer(self) -> Placer:
        # The job lock must outlast one HTTP call (requests applies the timeout to connect and read).
        return Placer(self.client, self.jobs, self.pacer, self.budget, self.risk,
                      lock_seconds=2 * self.settings.upstream_timeout + 5)

    @cached_property
    def user_stream(self) -> UserStreamKeys:
        return UserStreamKeys(self.client, self.settings.binance_api_key, self.settings.binance_api_secret,
                              self.budget, self.redis, self.settings.redis_key_prefix)


_lock = threading.Lock()
_resources: Resources | None = None


def resources() -> Resources:
    global _resources
    with _lock:
        if _resources is None:
            settings = Settings.from_env()
            setup_logging(settings.log_level, settings.secret_values(), settings.log_format)
            _resources = Resources(settings)
        return _resources
