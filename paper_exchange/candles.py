"""Public market history of one symbol: trades, aggregate trades and 1-minute candles built from them.

Klines of every interval and the rolling 24 h statistics are derived from the same trades, so the
REST endpoints always agree with each other.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal

from .money import ZERO

MINUTE = 60_000
INTERVALS_MS = {
    "1s": 1_000, "1m": MINUTE, "3m": 3 * MINUTE, "5m": 5 * MINUTE, "15m": 15 * MINUTE, "30m": 30 * MINUTE,
    "1h": 60 * MINUTE, "2h": 120 * MINUTE, "4h": 240 * MINUTE, "6h": 360 * MINUTE, "8h": 480 * MINUTE,
    "12h": 720 * MINUTE, "1d": 1440 * MINUTE, "3d": 3 * 1440 * MINUTE, "1w": 7 * 1440 * MINUTE,
    "1M": 30 * 1440 * MINUTE,  # calendar months are bucketed by month below, not by this length
}
KEEP_TRADES = 50_000
AVERAGE_MINUTES = 5  # Binance's avgPrice window


@dataclass(slots=True)
class PublicTrade:
    id: int
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    time: int
    is_buyer_maker: bool


@dataclass(slots=True)
class AggTrade:
    id: int
    price: Decimal
    qty: Decimal
    first_id: int
    last_id: int
    time: int
    is_buyer_maker: bool


@dataclass(slots=True)
class Candle:
    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO
    quote_volume: Decimal = ZERO
    count: int = 0
    taker_buy_volume: Decimal = ZERO
    taker_buy_quote: Decimal = ZERO
    first_id: int = -1
    last_id: int = -1

    def add(self, trade: PublicTrade) -> None:
        if self.count == 0:
            self.open = self.high = self.low = trade.price
            self.first_id = trade.id
        self.high = max(self.high, trade.price)
        self.low = min(self.low, trade.price)
        self.close = trade.price
        self.volume += trade.qty
        self.quote_volume += trade.quote_qty
        self.count += 1
        self.last_id = trade.id
        if not trade.is_buyer_maker:
            self.taker_buy_volume += trade.qty
            self.taker_buy_quote += trade.quote_qty

    def merge(self, other: "Candle") -> None:
        if other.count == 0:
            return
        if self.count == 0:
            self.open, self.high, self.low, self.first_id = other.open, other.high, other.low, other.first_id
        self.high = max(self.high, other.high)
        self.low = min(self.low, other.low)
        self.close = other.close
        self.volume += other.volume
        self.quote_volume += other.quote_volume
        self.count += other.count
        self.taker_buy_volume += other.taker_buy_volume
        self.taker_buy_quote += other.taker_buy_quote
        self.last_id = other.last_id


def month_start(ms: int) -> int:
    import datetime as dt

    day = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return int(dt.datetime(day.year, day.month, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)


def next_month(ms: int) -> int:
    import datetime as dt

    day = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return int(dt.datetime(year, month, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)


class MarketHistory:
    """Trades, aggregate trades and 1m candles of one symbol."""

    def __init__(self) -> None:
        self.trades: deque[PublicTrade] = deque(maxlen=KEEP_TRADES)
        self.agg_trades: deque[AggTrade] = deque(maxlen=KEEP_TRADES)
        self.minutes: dict[int, Candle] = {}
        self.next_trade_id = 1
        self.next_agg_id = 1
        self._open_agg: tuple[object, Decimal] | None = None  # (taker order, price) of the last agg trade
        # The trades of the last AVERAGE_MINUTES with their sums, so avgPrice (read by every order's
        # filter check) costs O(1) amortized instead of a walk over minutes of trades.
        self._recent: deque[PublicTrade] = deque()
        self._recent_qty = self._recent_quote = ZERO
        self._recent_since = -1  # every kept trade at or after this time is in _recent
        self._in_order = True    # trades arrived in time order (else avgPrice walks the trades)

    @property
    def last(self) -> PublicTrade | None:
        return self.trades[-1] if self.trades else None

    def record(self, price: Decimal, qty: Decimal, quote: Decimal, time: int, is_buyer_maker: bool,
               taker=None) -> PublicTrade:
        trade = PublicTrade(self.next_trade_id, price, qty, quote, time, is_buyer_maker)
        self.next_trade_id += 1
        if self.trades and time < self.trades[-1].time:
            self._in_order = False
        self.trades.append(trade)
        self._remember(trade)
        # Binance aggregates the fills of one taker order at one price into one aggTrade.
        agg = self.agg_trades[-1] if self.agg_trades else None
        if taker is not None and agg is not None and self._open_agg == (id(taker), price):
            agg.qty += qty
            agg.last_id = trade.id
        else:
            self.agg_trades.append(AggTrade(self.next_agg_id, price, qty, trade.id, trade.id, time, is_buyer_maker))
            self.next_agg_id += 1
            self._open_agg = (id(taker), price) if taker is not None else None
        minute = time - time % MINUTE
        candle = self.minutes.get(minute)
        if candle is None:
            candle = self.minutes[minute] = Candle(minute, price, price, price, price)
        candle.add(trade)
        return trade

    def end_aggregation(self) -> None:
        self._open_agg = None

    # -- queries ------------------------------------------------------------------------------------

    def klines(self, interval: str, start: int | None, end: int | None, limit: int, now: int) -> list[Candle]:
        """Candles of `interval`, oldest first; like Binance, without a range it returns the newest."""
        if interval == "1s":
            return self._second_klines(start, end, limit, now)
        if not self.minutes:
            return []
        length = INTERVALS_MS[interval]
        bucket = month_start if interval == "1M" else (lambda ms: ms - ms % length)
        buckets: dict[int, Candle] = {}
        first_minute = min(self.minutes)
        lo = bucket(start) if start is not None else bucket(first_minute)
        hi = end if end is not None else now
        for minute in sorted(self.minutes):
            key = bucket(minute)
            if key < lo or key > hi:  # by candle, not minute: a candle opened by endTime is returned whole
                continue
            candle = self.minutes[minute]
            agg = buckets.get(key)
            if agg is None:
                agg = buckets[key] = Candle(key, candle.open, candle.high, candle.low, candle.close)
            agg.merge(candle)
        # Binance fills gaps with empty candles carrying the previous close; the simulated market
        # trades every minute, so gaps only appear before the first trade.
        rows = [buckets[k] for k in sorted(buckets) if (start is None or k >= bucket(start))]
        if start is not None:
            return rows[:limit]
        return rows[-limit:]

    def _second_klines(self, start, end, limit, now) -> list[Candle]:
        buckets: dict[int, Candle] = {}
        for trade in self.trades:
            key = trade.time - trade.time % 1000
            if (start is not None and key < start - start % 1000) or (end is not None and key > end):
                continue
            candle = buckets.get(key)
            if candle is None:
                candle = buckets[key] = Candle(key, trade.price, trade.price, trade.price, trade.price)
            candle.add(trade)
        rows = [buckets[k] for k in sorted(buckets)]
        return rows[:limit] if start is not None else rows[-limit:]

    def close_time(self, candle: Candle, interval: str) -> int:
        if interval == "1M":
            return next_month(candle.open_time) - 1
        return candle.open_time + INTERVALS_MS[interval] - 1

    def window(self, start: int, end: int) -> Candle | None:
        """All trading between two times, by whole minutes, as one candle (for 24 h stats)."""
        total: Candle | None = None
        lo = start - start % MINUTE
        for minute in sorted(self.minutes):
            if lo <= minute <= end:
                candle = self.minutes[minute]
                if total is None:
                    total = Candle(minute, candle.open, candle.high, candle.low, candle.close)
                total.merge(candle)
        return total

    def close_before(self, time: int) -> Decimal | None:
        best = None
        for minute, candle in self.minutes.items():
            if minute < time - time % MINUTE and (best is None or minute > best.open_time):
                best = candle
        return best.close if best else None

    def average_price(self, now: int, mins: int = AVERAGE_MINUTES) -> Decimal | None:
        """Binance's avgPrice: the volume-weighted price of the last `mins` minutes of trades."""
        since = now - mins * MINUTE
        if mins == AVERAGE_MINUTES and self._in_order and since >= self._recent_since:
            self._forget_before(since)
            volume, quote = self._recent_qty, self._recent_quote
        else:
            volume = quote = ZERO
            for trade in reversed(self.trades):
                if trade.time < since:
                    break
                volume += trade.qty
                quote += trade.quote_qty
        if volume:
            return quote / volume
        return self.last.price if self.last else None

    def _remember(self, trade: PublicTrade) -> None:
        recent = self._recent
        recent.append(trade)
        self._recent_qty += trade.qty
        self._recent_quote += trade.quote_qty
        if len(recent) > KEEP_TRADES:  # gone from self.trades too (its maxlen)
            old = recent.popleft()
            self._recent_qty -= old.qty
            self._recent_quote -= old.quote_qty
        self._forget_before(trade.time - AVERAGE_MINUTES * MINUTE)

    def _forget_before(self, since: int) -> None:
        recent = self._recent
        while recent and recent[0].time < since:
            old = recent.popleft()
            self._recent_qty -= old.qty
            self._recent_quote -= old.quote_qty
            self._recent_since = old.time + 1
        if not recent:
            self._recent_qty = self._recent_quote = ZERO  # no rounding residue can outlive the window

    def prune(self, now: int, keep_ms: int = 3 * 1440 * MINUTE) -> None:
        cutoff = now - keep_ms
        for minute in [m for m in self.minutes if m < cutoff]:
            del self.minutes[minute]
