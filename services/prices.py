"""Last prices for the worker's risk check at send time: the stream relay's ticker in Redis when it is
fresh, else Binance's `ticker/price` (under the weight budget, as part of placing an order).

    P ticker:<SYM>   the relay's merged ticker (JSON with `price` and `updatedAt`, ms); written by
                     workers/stream_bus.py, read by the web tier's market data too
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

import orjson
from redis import Redis

from binance_client import BinanceClient, endpoints
from binance_client.budget import ORDER, WeightBudget

from .contract.keys import TICKER_FRESH_MS, Keys


def fresh_price(raw, now_ms: float | None = None) -> Decimal | None:
    """The price in a relay ticker record, or None when it is missing, malformed or stale."""
    if not raw:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    now_ms = time.time() * 1000 if now_ms is None else now_ms
    if not isinstance(data, dict) or "price" not in data or now_ms - data.get("updatedAt", 0) > TICKER_FRESH_MS:
        return None
    return Decimal(data["price"])


@dataclass
class Prices:
    redis: Redis
    prefix: str
    client: BinanceClient
    budget: WeightBudget

    def last(self, symbol: str) -> Decimal:
        price = fresh_price(self.redis.get(Keys(self.prefix).ticker(symbol)))
        if price is not None:
            return price
        request = endpoints.ticker_price(symbol)
        self.budget.spend(request.weight, ORDER)
        response = self.client.send(request)
        self.budget.observe(response.rate_limits.used_weight_1m)
        return Decimal(response.data["price"])
