"""One symbol's limit order book: price levels in price-time priority, with Binance update ids."""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator
from decimal import Decimal
from itertools import islice

from .money import ZERO


class Level:
    """Resting orders at one price, oldest first, and their total remaining quantity."""

    __slots__ = ("price", "orders", "qty")

    def __init__(self, price: Decimal):
        self.price = price
        self.orders: deque = deque()
        self.qty = ZERO


class Side:
    """One side of the book. Bids are kept best (highest) first, asks best (lowest) first."""

    def __init__(self, is_bid: bool):
        self.is_bid = is_bid
        self.levels: dict[Decimal, Level] = {}
        self._keys: list[Decimal] = []  # sorted ascending by key(); key() makes bids descending

    def _key(self, price: Decimal) -> Decimal:
        return -price if self.is_bid else price

    def best(self) -> Level | None:
        return self.levels[self._price_of(self._keys[0])] if self._keys else None

    def _price_of(self, key: Decimal) -> Decimal:
        return -key if self.is_bid else key

    def __iter__(self) -> Iterator[Level]:
        for key in list(self._keys):
            level = self.levels.get(self._price_of(key))
            if level is not None:
                yield level

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, order) -> Level:
        level = self.levels.get(order.price)
        if level is None:
            level = self.levels[order.price] = Level(order.price)
            bisect.insort(self._keys, self._key(order.price))
        level.orders.append(order)
        level.qty += order.remaining
        return level

    def remove_level_if_empty(self, level: Level) -> None:
        if not level.orders:
            del self.levels[level.price]
            index = bisect.bisect_left(self._keys, self._key(level.price))
            del self._keys[index]

    def crosses(self, price: Decimal | None, limit: Decimal | None) -> bool:
        """Would a taker limited to `limit` (None: market) trade with a level at `price`?"""
        if limit is None:
            return True
        return price >= limit if self.is_bid else price <= limit


class OrderBook:
    """Bids and asks for one symbol plus Binance's `lastUpdateId` and the levels changed since the
    last diff was taken (the depth stream sends exactly those)."""

    def __init__(self, symbol: str):
        self.symbol = symbol
        self.bids = Side(is_bid=True)
        self.asks = Side(is_bid=False)
        self.update_id = 1
        self._changed: dict[tuple[bool, Decimal], None] = {}
        self._first_pending: int | None = None

    def side(self, is_buy: bool) -> Side:
        return self.bids if is_buy else self.asks

    def touch(self, is_bid: bool, price: Decimal) -> None:
        """Record a level change: every change gets its own update id, as on Binance."""
        self.update_id += 1
        if self._first_pending is None:
            self._first_pending = self.update_id
        self._changed[(is_bid, price)] = None

    def add(self, order) -> None:
        self.side(order.is_buy).add(order)
        self.touch(order.is_buy, order.price)

    def remove(self, order) -> None:
        side = self.side(order.is_buy)
        level = side.levels.get(order.price)
        if level is None:
            return
        try:
            level.orders.remove(order)
        except ValueError:
            return
        level.qty -= order.remaining
        side.remove_level_if_empty(level)
        self.touch(order.is_buy, order.price)

    def level_qty(self, is_bid: bool, price: Decimal) -> Decimal:
        level = (self.bids if is_bid else self.asks).levels.get(price)
        return level.qty if level else ZERO

    def depth(self, limit: int) -> dict:
        return {
            "lastUpdateId": self.update_id,
            "bids": [(level.price, level.qty) for level in islice(self.bids, limit)],
            "asks": [(level.price, level.qty) for level in islice(self.asks, limit)],
        }

    def take_diff(self) -> dict | None:
        """Levels changed since the previous call, as a Binance depthUpdate's U/u/b/a (None if none)."""
        if self._first_pending is None:
            return None
        bids, asks = [], []
        for is_bid, price in self._changed:
            (bids if is_bid else asks).append((price, self.level_qty(is_bid, price)))
        diff = {"U": self._first_pending, "u": self.update_id, "b": bids, "a": asks}
        self._changed.clear()
        self._first_pending = None
        return diff

    def best_bid(self) -> Level | None:
        return self.bids.best()

    def best_ask(self) -> Level | None:
        return self.asks.best()
