"""Public market history of one symbol: trades, aggregate trades and 1-minute candles built from them.

Klines of every interval and the rolling 24 h statistics are derived from the same trades, so the
REST endpoints always agree with each other.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from .money import ZERO

if TYPE_CHECKING:
    from .history import SyntheticPast

MINUTE = 60_000
INTERVALS_MS = {
    "1s": 1_000,
    "1m": MINUTE,
    "3m": 3 * MINUTE,
    "5m": 5 * MINUTE,
    "15m": 15 * MINUTE,
    "30m": 30 * MINUTE,
    "1h": 60 * MINUTE,
    "2h": 120 * MINUTE,
    "4h": 240 * MINUTE,
    "6h": 360 * MINUTE,
    "8h": 480 * MINUTE,
    "12h": 720 * MINUTE,
    "1d": 1440 * MINUTE,
    "3d": 3 * 1440 * MINUTE,
    "1w": 7 * 1440 * MINUTE,
    "1M": 30 * 1440 * MINUTE,  # calendar months are bucketed by month below, not by this length
}
KEEP_TRADES = 50_000
AVERAGE_MINUTES = 5  # Binance's avgPrice window
MONDAY = 4 * 1440 * MINUTE  # 1970-01-05, the first Monday: Binance's weekly candles open on Mondays


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

    def merge(self, other: Candle) -> None:
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
    day = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return int(dt.datetime(day.year, day.month, 1, tzinfo=dt.UTC).timestamp() * 1000)


def next_month(ms: int) -> int:
    day = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return int(dt.datetime(year, month, 1, tzinfo=dt.UTC).timestamp() * 1000)


def bucket_start(interval: str, ms: int) -> int:
    """Open time of the candle of `interval` holding `ms` (UTC; weeks start on Monday, as Binance's)."""
    if interval == "1M":
        return month_start(ms)
    length = INTERVALS_MS[interval]
    if interval == "1w":
        return ms - (ms - MONDAY) % length
    return ms - ms % length


def bucket_after(interval: str, start: int) -> int:
    """Open time of the candle after the one opening at `start`."""
    return next_month(start) if interval == "1M" else start + INTERVALS_MS[interval]


def bucket_before(interval: str, start: int) -> int:
    return month_start(start - 1) if interval == "1M" else start - INTERVALS_MS[interval]


class MarketHistory:
    """Trades, aggregate trades and 1m candles of one symbol, and (when given) its synthetic past
    before the first recorded trade (history.py), which klines continue into seamlessly."""

    def __init__(self, past: SyntheticPast | None = None) -> None:
        self.trades: deque[PublicTrade] = deque(maxlen=KEEP_TRADES)
        self.agg_trades: deque[AggTrade] = deque(maxlen=KEEP_TRADES)
        self.minutes: dict[int, Candle] = {}
        self._minute_keys: list[int] = []  # self.minutes' keys, in order (bisect for time ranges)
        self.past = past
        self.next_trade_id = 1
        self.next_agg_id = 1
        self._dropped_before = -1  # trades before this time may have left self.trades (KEEP_TRADES)
        self._open_agg: tuple[object, Decimal] | None = None  # (taker order, price) of the last agg trade
        # The trades of the last AVERAGE_MINUTES with their sums, so avgPrice (read by every order's
        # filter check) costs O(1) amortized instead of a walk over minutes of trades.
        self._recent: deque[PublicTrade] = deque()
        self._recent_qty = self._recent_quote = ZERO
        self._recent_since = -1  # every kept trade at or after this time is in _recent
        self._in_order = True  # trades arrived in time order (else avgPrice walks the trades)

    @property
    def last(self) -> PublicTrade | None:
        return self.trades[-1] if self.trades else None

    @property
    def horizon(self) -> int:
        """Where the recorded trades take over from the synthetic past."""
        return self.past.horizon if self.past is not None else -1

    def record(
        self, price: Decimal, qty: Decimal, quote: Decimal, time: int, is_buyer_maker: bool, taker=None
    ) -> PublicTrade:
        trade = PublicTrade(self.next_trade_id, price, qty, quote, time, is_buyer_maker)
        self.next_trade_id += 1
        if self.trades and time < self.trades[-1].time:
            self._in_order = False
        if len(self.trades) == KEEP_TRADES:
            self._dropped_before = max(self._dropped_before, self.trades[0].time + 1)
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
            if self._minute_keys and minute < self._minute_keys[-1]:
                bisect.insort(self._minute_keys, minute)
            else:
                self._minute_keys.append(minute)
        candle.add(trade)
        return trade

    def end_aggregation(self) -> None:
        self._open_agg = None

    # -- queries ------------------------------------------------------------------------------------

    def earliest(self) -> int | None:
        """The first moment with market data: the listing (synthetic past) or the first trade."""
        if self.past is not None and not self.past.empty:
            return self.past.listed
        return self._minute_keys[0] if self._minute_keys else None

    def klines(self, interval: str, start: int | None, end: int | None, limit: int, now: int) -> list[Candle]:
        """Candles of `interval`, oldest first, as Binance pages them: from the first candle opening at
        or after `startTime`, else the newest ending with the one open at `endTime` (or now); none
        before the listing. Intervals without trades are flat at the previous close."""
        first = self.earliest()
        if first is None:
            return []
        lowest = bucket_start(interval, first)
        last = bucket_start(interval, min(end, now) if end is not None else now)
        opens: list[int] = []
        if start is not None:
            b = bucket_start(interval, start)
            b = max(lowest, b if b == start else bucket_after(interval, b))
            while b <= last and len(opens) < limit:
                opens.append(b)
                b = bucket_after(interval, b)
        else:
            b = last
            while b >= lowest and len(opens) < limit:
                opens.append(b)
                b = bucket_before(interval, b)
            opens.reverse()
        if interval == "1s":
            return self._second_candles(opens, now)
        candles = []
        for b in opens:
            candle = self.candle(interval, b, now)
            if candle is not None:
                candles.append(candle)
        return candles

    def candle(self, interval: str, open_time: int, now: int) -> Candle | None:
        """The candle of `interval` opening at `open_time` (open while `now` is inside it), built from
        the synthetic past before the horizon and the recorded minutes after it; None before any data."""
        if interval == "1s":
            found = self._second_candles([open_time], now)
            return found[0] if found else None
        close = bucket_after(interval, open_time)
        parts: list[Candle] = []
        horizon = self.horizon
        if self.past is not None and open_time < horizon:
            node = self.past.aggregate(open_time, close)
            if node is not None:
                parts.append(self.past.to_candle(node, open_time))
        lo = bisect.bisect_left(self._minute_keys, max(open_time, horizon))
        hi = bisect.bisect_left(self._minute_keys, min(close, now + 1))
        parts.extend(self.minutes[m] for m in self._minute_keys[lo:hi])
        return self._combine(open_time, parts)

    def _combine(self, open_time: int, parts: list[Candle]) -> Candle | None:
        total: Candle | None = None
        for part in parts:
            if part.count == 0:
                continue
            if total is None:
                total = Candle(open_time, part.open, part.high, part.low, part.close)
            total.merge(part)
        if total is None:
            before = self.close_before_minute(open_time)
            return None if before is None else Candle(open_time, before, before, before, before)
        return total

    def close_before_minute(self, minute: int) -> Decimal | None:
        """The last price before the minute starting at `minute`: the close of the last recorded
        minute before it, else of the synthetic past there (None before any data)."""
        i = bisect.bisect_left(self._minute_keys, minute)
        if i > 0:
            return self.minutes[self._minute_keys[i - 1]].close
        past = self.past
        if past is not None and not past.empty and minute >= past.listed:
            return past.close_before(min(minute, past.horizon)) * past.tick
        return None

    def _second_candles(self, opens: list[int], now: int) -> list[Candle]:
        """1s candles: the synthetic past's seconds, then the kept trades; recorded seconds whose
        trades are gone are their minute split into seconds (so they still add up to it)."""
        if not opens:
            return []
        horizon, past = self.horizon, self.past
        lo, hi = opens[0], opens[-1] + 1000
        inside: list[PublicTrade] = []
        before: PublicTrade | None = None
        for trade in reversed(self.trades):
            if trade.time < lo:
                before = trade
                break
            if trade.time < hi:
                inside.append(trade)
        by_second: dict[int, Candle] = {}
        for trade in reversed(inside):
            key = trade.time - trade.time % 1000
            candle = by_second.get(key)
            if candle is None:
                candle = by_second[key] = Candle(key, trade.price, trade.price, trade.price, trade.price)
            candle.add(trade)
        covered_from = horizon
        if self._dropped_before >= 0:
            covered_from = max(horizon, (self._dropped_before // MINUTE + 1) * MINUTE)
        close = before.price if before is not None else self.close_before_minute(lo - lo % MINUTE)
        splits: dict[int, list] = {}
        rows = []
        for b in opens:
            if past is not None and b < covered_from:
                if b < horizon:
                    node = past.second(b // 1000)
                else:
                    minute = b - b % MINUTE
                    children = splits.get(minute)
                    if children is None:
                        previous = self.close_before_minute(minute)
                        prev_ticks = int(previous / past.tick) if previous is not None else past.closes[-1]
                        recorded = self.minutes.get(minute)
                        node = past.to_node(recorded, previous) if recorded is not None else None
                        children = splits[minute] = (
                            past.split_recorded(minute // MINUTE, node, prev_ticks)
                            if node is not None
                            else [past.to_node(Candle(minute, previous, previous, previous, previous), previous)] * 60
                        )
                    node = children[(b % MINUTE) // 1000]
                row = past.to_candle(node, b)
            else:
                row = by_second.get(b)
                if row is None:
                    if close is None:
                        continue
                    row = Candle(b, close, close, close, close)
            close = row.close
            rows.append(row)
        return rows

    def close_time(self, candle: Candle, interval: str) -> int:
        if interval == "1M":
            return next_month(candle.open_time) - 1
        return candle.open_time + INTERVALS_MS[interval] - 1

    def window(self, start: int, end: int) -> Candle | None:
        """All recorded trading between two times, by whole minutes, as one candle (for 24 h stats)."""
        total: Candle | None = None
        lo = bisect.bisect_left(self._minute_keys, start - start % MINUTE)
        hi = bisect.bisect_right(self._minute_keys, end)
        for minute in self._minute_keys[lo:hi]:
            candle = self.minutes[minute]
            if total is None:
                total = Candle(minute, candle.open, candle.high, candle.low, candle.close)
            total.merge(candle)
        return total

    def close_before(self, time: int) -> Decimal | None:
        """The close of the last recorded minute before the one holding `time`."""
        i = bisect.bisect_left(self._minute_keys, time - time % MINUTE)
        return self.minutes[self._minute_keys[i - 1]].close if i > 0 else None

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
