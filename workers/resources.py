"""What a worker process holds: settings, Redis, the signing Binance client and the services.

Built on first use inside each worker process (after Celery forks), never at import time. This is
the only place the Binance signing key (BINANCE_PRIVATE_KEY_FILE, or the HMAC secret) is read.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import cached_property

import redis

from binance_client import BinanceClient, Signer, endpoints, load_signer, load_signer_file
from binance_client.budget import WeightBudget
from binance_client.errors import BinanceError
from binance_client.signing import hmac_signer
from config import Settings
from config.logging import setup_logging
from config.redis_connection import redis_connection
from services.contract.limits import DEFAULT_WEIGHT_LIMIT, budget_limit, weight_limit_per_minute
from services.jobs import JobStore
from services.metrics import observe_upstream
from services.orders import Orders
from services.pacing import OrderPacer
from services.placement import Placer
from services.risk import RiskStore
from services.signed import SignedCaller
from services.user_stream import UserStreamKeys

log = logging.getLogger("spotgate.worker")


@dataclass
class Resources:
    settings: Settings

    @cached_property
    def redis(self) -> redis.Redis:
        url, tls = redis_connection(self.settings)
        return redis.Redis.from_url(url, **tls, health_check_interval=30)

    @cached_property
    def signer(self) -> Signer:
        return signing_key(self.settings)

    @cached_property
    def client(self) -> BinanceClient:
        client = BinanceClient(
            self.settings.binance_api_url,
            api_key=self.settings.binance_api_key,
            signer=self.signer,
            timeout=self.settings.upstream_timeout,
            observer=observe_upstream,
        )
        try:
            client.sync_time()
        except BinanceError as exc:  # the first signed call resyncs on -1021 anyway
            log.warning("could not sync the server time at start: %s", exc)
        return client

    @cached_property
    def budget(self) -> WeightBudget:
        return WeightBudget(
            self.redis,
            self.settings.redis_key_prefix,
            budget_limit(DEFAULT_WEIGHT_LIMIT),
            order_reserve=self.settings.upstream_order_reserve,
            cancel_reserve=self.settings.upstream_cancel_reserve,
        )

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
            limit = weight_limit_per_minute(info)
            if limit is not None:
                self.budget.limit = budget_limit(limit)
        except BinanceError as exc:
            log.warning("exchangeInfo unavailable, pacing with Binance's default limits: %s", exc)
        return pacer

    @cached_property
    def orders(self) -> Orders:
        return Orders(SignedCaller(self.client, self.budget), self.risk)

    @cached_property
    def placer(self) -> Placer:
        # The job lock must outlast one HTTP call (requests applies the timeout to connect and read).
        return Placer(
            self.client,
            self.jobs,
            self.pacer,
            self.budget,
            self.risk,
            lock_seconds=2 * self.settings.upstream_timeout + 5,
        )

    @cached_property
    def user_stream(self) -> UserStreamKeys:
        return UserStreamKeys(
            self.client,
            self.settings.binance_api_key,
            self.signer,
            self.budget,
            self.redis,
            self.settings.redis_key_prefix,
        )


def signing_key(settings: Settings) -> Signer:
    """The RSA or Ed25519 key of BINANCE_PRIVATE_KEY (the PEM itself, for platforms with config vars
    but no secret files, such as Heroku) or BINANCE_PRIVATE_KEY_FILE (type read from the PEM), else the
    HMAC secret; ValueError naming the variable when it cannot be used."""
    settings.require_binance_credentials()
    if settings.binance_private_key:
        try:
            signer = load_signer(settings.binance_private_key, settings.binance_private_key_passphrase)
        except ValueError as exc:
            raise ValueError(f"BINANCE_PRIVATE_KEY: {exc}") from None
        log.info("signing with the %s key of BINANCE_PRIVATE_KEY", signer.key_type)
        return signer
    path = settings.binance_private_key_file
    if not path:
        return hmac_signer(settings.binance_api_secret)
    try:
        signer = load_signer_file(path, settings.binance_private_key_passphrase)
    except OSError as exc:
        raise ValueError(f"BINANCE_PRIVATE_KEY_FILE: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ValueError(f"BINANCE_PRIVATE_KEY_FILE: {exc}") from None
    log.info("signing with the %s key of %s", signer.key_type, path)
    return signer


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
