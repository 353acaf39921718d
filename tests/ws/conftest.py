"""The web process (real Sanic, real Redis) with a paper exchange for exchangeInfo; the stream relay
is stood in for by tests.ws.support.Relay, which drives the relay's own publisher (workers/stream_bus.py)."""

from __future__ import annotations

import pytest

from tests.paper.conftest import PaperProcess
from tests.processes import WebProcess

from .support import Client, Relay

# Small limits so tests reach them quickly; WS_HEARTBEAT_INTERVAL=1 so pings are observable.
WS_ENV = {
    "WS_MAX_SUBSCRIPTIONS": "6",
    "WS_MESSAGE_RATE": "10",
    "WS_SEND_QUEUE": "16",
    "WS_SLOW_CLIENT_TIMEOUT": "2",
    "WS_HEARTBEAT_INTERVAL": "1",
}


class Gateway:
    def __init__(self, upstream: PaperProcess, redis_url: str, **env: str):
        self.web = WebProcess(upstream.url, redis_url, **{**WS_ENV, **env})
        self.relay = Relay(redis_url, self.web.prefix)
        self.ws_url = f"ws://127.0.0.1:{self.web.port}"

    def connect(self, path: str = "/ws", **options) -> Client:
        return Client(self.ws_url + path, **options)

    def token(self, role: str = "viewer", **claims) -> str:
        return self.web.token(role, **claims)

    def stop(self) -> None:
        self.web.stop()
        for key in self.relay.redis.scan_iter(match=f"{self.web.prefix}*", count=1000):
            self.relay.redis.unlink(key)
        self.relay.close()


@pytest.fixture(scope="package")
def upstream():
    px = PaperProcess(seed=11)
    yield px
    px.stop()


@pytest.fixture(scope="module")
def gateway(upstream, redis_url):
    g = Gateway(upstream, redis_url)
    yield g
    g.stop()
