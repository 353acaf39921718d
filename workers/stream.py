"""The stream relay process: `python -m workers.stream`.

Binance's WebSockets in, Redis out (the contract: docs/streams-protocol.md). Once a second — and at
once when a web process announces a new channel — it reads the demand in Redis, adds the always-on
STREAM_SYMBOLS tickers, and has the market relay subscribe and unsubscribe upstream to match. It
keeps one user data stream (USER_STREAM_MODE). It holds no API secret: what must be signed is
signed by a worker (tasks/user_stream.py).

    Relay.run()       the main loop: demand → market relay; rotation upkeep; the status report
    DemandListener    `stream:demand:changed` subscriber that wakes the main loop
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time

import redis

from binance_client import BinanceClient
from binance_client.budget import WeightBudget
from config import Settings
from config.logging import setup_logging
from config.redis_connection import redis_connection
from config.signing_env import SIGNING_SECRETS, drop_from_environment
from services import metrics as telemetry
from services.contract.channels import Channel, ChannelKind
from services.contract.limits import DEFAULT_WEIGHT_LIMIT, budget_limit
from services.jobs import JobStore

from .market_relay import DepthSnapshots, MarketRelay
from .stream_bus import StreamBus
from .user_relay import UserEvents, WorkerCalls, user_stream_for

log = logging.getLogger("spotgate.stream")
POLL_SECONDS = 1.0


class DemandListener(threading.Thread):
    def __init__(self, redis_client, channel: str, wake: threading.Event, stopped: threading.Event):
        super().__init__(name="demand-listener", daemon=True)
        self.redis, self.channel, self.wake, self.stopped = redis_client, channel, wake, stopped

    def run(self) -> None:
        while not self.stopped.is_set():
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
                while not self.stopped.is_set():
                    if pubsub.get_message(timeout=1.0) is not None:
                        self.wake.set()
            except redis.RedisError as exc:
                log.warning("demand listener lost Redis (%s); resubscribing", exc)
                self.stopped.wait(1.0)
            finally:
                pubsub.close()


class Relay:
    def __init__(self, settings: Settings, redis_client: redis.Redis | None = None, celery=None):
        self.settings = settings
        url, tls = redis_connection(settings)
        self.redis = redis_client or redis.Redis.from_url(url, **tls, health_check_interval=30)
        prefix = settings.redis_key_prefix
        self.bus = StreamBus(self.redis, prefix)
        client = BinanceClient(
            settings.binance_api_url, timeout=settings.upstream_timeout, observer=telemetry.observe_upstream
        )
        budget = WeightBudget(
            self.redis,
            prefix,
            budget_limit(DEFAULT_WEIGHT_LIMIT),
            order_reserve=settings.upstream_order_reserve,
            cancel_reserve=settings.upstream_cancel_reserve,
        )
        self.market = MarketRelay(settings, self.bus, DepthSnapshots(client, budget, settings.stream_depth_limit))
        if celery is None:
            from workers.celery_app import app as celery
        reply_timeout = settings.upstream_timeout + 5
        # BLPOP blocks for up to reply_timeout: its connection must not time out first
        blocking = redis.Redis.from_url(url, **tls, socket_timeout=reply_timeout + 5)
        worker = WorkerCalls(celery, blocking, prefix, timeout=reply_timeout)
        self.user = user_stream_for(settings, self.bus, worker, UserEvents(self.bus, JobStore(self.redis, prefix)))
        self.always_on = {f"ticker:{symbol}": Channel(ChannelKind.TICKER, symbol) for symbol in settings.stream_symbols}
        self.wake = threading.Event()
        self.stopped = threading.Event()
        self._redis_trouble_logged = 0.0

    def stop(self, *_) -> None:
        self.stopped.set()
        self.wake.set()

    def run(self) -> None:
        log.info(
            "stream relay starting: streams %s, user stream %s, always-on %s",
            self.settings.binance_stream_url,
            self.settings.user_stream_mode,
            ",".join(self.settings.stream_symbols) or "none",
        )
        DemandListener(self.redis, self.bus.keys.demand_changed, self.wake, self.stopped).start()
        self.user.start()
        try:
            while not self.stopped.is_set():
                self.step()
                self.wake.wait(POLL_SECONDS)
                self.wake.clear()
        finally:
            log.info("stream relay stopping")
            self.market.stop()
            self.user.stop()

    def step(self) -> None:
        try:
            self.market.set_demand(self.wanted())
            self.bus.report({"market": self.market.describe(), "user": self.user.describe()})
        except redis.RedisError as exc:
            if time.monotonic() - self._redis_trouble_logged > 10:
                self._redis_trouble_logged = time.monotonic()
                log.warning("Redis unavailable (%s): keeping the current subscriptions", exc)
        self.market.tick()
        self.user.tick()

    def wanted(self) -> dict[str, Channel]:
        wanted = dict(self.always_on)
        for name in self.bus.demanded():
            channel = Channel.parse(name)
            if channel is not None:
                wanted[channel.name] = channel
        return wanted


def main() -> None:
    # The relay may need the API key (listen keys); it never needs what signs.
    drop_from_environment(SIGNING_SECRETS)
    settings = Settings.from_env()
    # Nothing here signs: drop the secret even where the environment carries it (one Heroku config
    # for every dyno), so it cannot leak from this process.
    settings = dataclasses.replace(
        settings, binance_api_secret="", binance_private_key_file=None, binance_private_key_passphrase=None
    )
    setup_logging(settings.log_level, settings.secret_values(), settings.log_format)
    telemetry.configure("stream")
    relay = Relay(settings)
    publisher = telemetry.Publisher(
        relay.redis,
        settings.redis_key_prefix,
        telemetry.process_name("stream"),
        "stream",
        settings.metrics_push_interval,
    )
    publisher.start()
    signal.signal(signal.SIGTERM, relay.stop)
    signal.signal(signal.SIGINT, relay.stop)
    try:
        relay.run()
    finally:
        publisher.stop()


if __name__ == "__main__":
    main()
