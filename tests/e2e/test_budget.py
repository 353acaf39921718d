"""The fault check of issue 10: while market-data demand has spent the shared weight budget — depth
books the relay builds for anonymous WebSocket clients, and REST market data — orders still go out,
and the kill switch still cancels every open order. Market data stops at its ceiling (README "Shared
weight budget"); orders and cancels draw on the share kept for them."""

from __future__ import annotations

import itertools
import time
from decimal import Decimal

from tests.e2e.conftest import System

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "ETHBTC")


def spend_until_refused(system: System, token: str, path: str, params) -> int:
    """Ask for market data (fresh parameters each time, so nothing is served from a cache) until the
    gateway refuses with 429 UPSTREAM_BUDGET_SPENT; returns how many requests were answered."""
    answered = 0
    for query in params:
        answer = system.web.get(path, token=token, **query)
        if answer.status_code == 429:
            assert answer.json()["error"]["code"] == "UPSTREAM_BUDGET_SPENT", answer.text
            assert int(answer.headers["Retry-After"]) >= 1
            return answered
        assert answer.status_code == 200, answer.text
        answered += 1
    raise AssertionError(f"{path}: never refused")


def test_the_kill_switch_cancels_every_order_while_market_data_has_spent_the_budget(redis_url):
    # Many clients' demand: the per-client quota is lifted, so only the shared budget stops them.
    system = System(redis_url, seed=21, web_env={"CLIENT_WEIGHT_PER_MINUTE": "1000000"}, relay_env={})
    clients = []
    try:
        if time.time() % 60 > 35:  # the budget is per calendar minute: spend and check within one
            time.sleep(60.5 - time.time() % 60)
        placed = [system.place_limit() for _ in range(3)]

        # anonymous depth subscribers: the relay fetches a 50-weight snapshot for every book
        for symbol in SYMBOLS:
            client = system.connect(f"/ws/depth/{symbol.lower()}")
            client.open([f"depth:{symbol}"])
            client.until(lambda m: m["type"] == "depth.snapshot", 15, "a depth snapshot")
            clients.append(client)
        # REST market data, heaviest first (depth 5000 = weight 250), until even a 2-weight call is refused
        viewer = system.web.token("viewer", sub="market-watcher")
        for limit in (5000, 1000, 500, 100):
            spend_until_refused(
                system, viewer, "/api/v1/depth", ({"symbol": s, "limit": limit} for s in itertools.cycle(SYMBOLS))
            )
        now = int(time.time() * 1000)
        spend_until_refused(
            system,
            viewer,
            "/api/v1/klines",
            ({"symbol": "BTCUSDT", "interval": "1m", "limit": 1, "startTime": now - i * 60_000} for i in range(10_000)),
        )

        # orders still go out ...
        placed.append(system.place_limit())
        # ... and the kill switch cancels everything
        admin = system.web.token("admin", sub="ops")
        engaged = system.web.http.post(
            system.web.url + "/api/v1/admin/kill-switch",
            json={"engaged": True},
            headers={"Authorization": f"Bearer {admin}"},
            timeout=60,
        )
        assert engaged.status_code == 200, engaged.text
        canceled = {o["orderId"] for o in engaged.json()["data"]["canceled"]}
        assert canceled == {o["orderId"] for o in placed}
        assert system.paper.signed("GET", "/api/v3/openOrders").json() == []
        # market data was still refused meanwhile: the budget stayed spent for it
        assert (
            system.web.get(
                "/api/v1/klines", token=viewer, symbol="ETHUSDT", interval="1m", limit=1, startTime=now - 999 * 60_000
            ).status_code
            == 429
        )
        status = system.web.get("/api/v1/status", token=viewer).json()["data"]["weight"]
        assert status["usedThisMinute"] >= Decimal(status["budget"]) * Decimal("0.75")
    finally:
        for client in clients:
            client.close()
        system.stop()
