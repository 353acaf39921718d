"""Kline history of the paper exchange's core: every interval back to the listing date, each candle
the exact aggregate of its smaller intervals (OHLC, volumes, quote volumes, trade counts) — in the
synthetic past, across the horizon where recorded trades take over, and among the recorded trades —
and the same history again for the same seed."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

import pytest
from hypothesis import given, settings, strategies as st

from paper_exchange import history
from paper_exchange.candles import MINUTE, bucket_after, bucket_start
from paper_exchange.engine import Exchange
from paper_exchange.market import MarketSimulator
from paper_exchange.symbols import DEFAULT_SYMBOLS, UNICODE_SYMBOL

T0 = 1_790_000_000_000 + 17_321  # "now" of the simulated market: not on any candle boundary
RECORDED_MINUTES = 90
LIVE_STEPS = 1_200  # 5 minutes of live market at 250 ms a step
SYMBOLS = [s.symbol for s in DEFAULT_SYMBOLS]
# (interval, the interval it is made of)
PAIRS = [
    ("1m", "1s"),
    ("3m", "1m"),
    ("15m", "1m"),
    ("1h", "1m"),
    ("4h", "1h"),
    ("12h", "1h"),
    ("1d", "1h"),
    ("3d", "1d"),
    ("1w", "1d"),
    ("1M", "1d"),
]


@lru_cache(maxsize=4)
def market(seed: int) -> tuple[Exchange, int]:
    exchange = Exchange(DEFAULT_SYMBOLS, seed=seed)
    simulator = MarketSimulator(exchange, seed=seed)
    start = T0 - LIVE_STEPS * 250
    simulator.seed_history(start, minutes=RECORDED_MINUTES)
    for i in range(1, LIVE_STEPS + 1):
        simulator.step(start + 250 * i)
    return exchange, T0


def aggregate(candles):
    """What a client computes from the smaller candles: first open, max high, min low, last close,
    sums — over candles with trades (one without any is flat at the previous close)."""
    traded = [c for c in candles if c.count]
    if not traded:
        return candles[0].open, candles[0].high, candles[0].low, candles[-1].close, 0, 0, 0, 0, 0
    return (
        traded[0].open,
        max(c.high for c in traded),
        min(c.low for c in traded),
        traded[-1].close,
        sum(c.count for c in traded),
        sum(c.volume for c in traded),
        sum(c.quote_volume for c in traded),
        sum(c.taker_buy_volume for c in traded),
        sum(c.taker_buy_quote for c in traded),
    )


def fields(c):
    return c.open, c.high, c.low, c.close, c.count, c.volume, c.quote_volume, c.taker_buy_volume, c.taker_buy_quote


def assert_sane(c):
    assert c.low <= min(c.open, c.close) and max(c.open, c.close) <= c.high, c
    if c.count == 0:
        assert c.open == c.high == c.low == c.close and c.volume == c.quote_volume == 0, c
    else:
        assert c.volume > 0 and c.low * c.volume <= c.quote_volume <= c.high * c.volume, c
        assert 0 <= c.taker_buy_volume <= c.volume and c.taker_buy_quote <= c.quote_volume, c


def check_pair(hist, parent_interval: str, child_interval: str, moment: int, now: int) -> None:
    start = bucket_start(parent_interval, moment)
    close = bucket_after(parent_interval, start) - 1
    (parent,) = hist.klines(parent_interval, start, None, 1, now)
    assert parent.open_time == start
    children = hist.klines(child_interval, start, close, 1000, now)
    assert children and children[0].open_time >= start and children[-1].open_time <= min(close, now)
    assert fields(parent) == aggregate(children), (parent_interval, child_interval, start)
    for c in [parent, *children]:
        assert_sane(c)


@settings(max_examples=120, deadline=None)
@given(
    seed=st.sampled_from([1, 2]),
    symbol=st.sampled_from(SYMBOLS),
    pair=st.sampled_from(PAIRS),
    where=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_every_candle_is_the_aggregate_of_its_smaller_intervals(seed, symbol, pair, where):
    exchange, now = market(seed)
    hist = exchange.markets[symbol].history
    moment = hist.earliest() + int(where * (now - hist.earliest()))
    check_pair(hist, *pair, moment, now)


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: "-".join(p))
def test_candles_across_the_horizon_and_among_recorded_trades_aggregate_too(pair):
    exchange, now = market(1)
    for symbol in ("BTCUSDT", UNICODE_SYMBOL):
        hist = exchange.markets[symbol].history
        for moment in (hist.horizon - 1, hist.horizon, hist.horizon + 30 * MINUTE + 7_000, now):
            check_pair(hist, *pair, moment, now)


def test_recorded_minutes_are_the_trades_and_continue_the_past():
    exchange, now = market(1)
    hist = exchange.markets["ETHUSDT"].history
    minutes = hist.klines("1m", hist.horizon - 5 * MINUTE, None, 1000, now)
    recorded = [c for c in minutes if c.open_time >= hist.horizon]
    assert len(minutes) == len(recorded) + 5 and recorded[0].open_time == hist.horizon
    assert len(recorded) == (now - now % MINUTE - hist.horizon) // MINUTE + 1
    trades = list(hist.trades)
    for c in recorded:
        inside = [t for t in trades if c.open_time <= t.time < c.open_time + MINUTE]
        assert (c.count, c.volume) == (len(inside), sum((t.qty for t in inside), Decimal(0)))
    # the recorded trades begin where the synthetic past ends (a bridge, not a jump)
    last_past = minutes[4].close
    assert abs(trades[0].price / last_past - 1) < Decimal("0.01")


def test_history_reaches_back_to_the_listing_date():
    exchange, now = market(1)
    for spec in DEFAULT_SYMBOLS:
        hist = exchange.markets[spec.symbol].history
        first = hist.klines("1d", 0, None, 2, now)
        assert first[0].open_time == spec.listed and first[1].open_time == spec.listed + 86_400_000
        assert hist.klines("1h", None, spec.listed - 1, 10, now) == []
        months = hist.klines("1M", None, None, 1000, now)
        assert months[0].open_time == bucket_start("1M", spec.listed)
        assert months[-1].open_time == bucket_start("1M", now)


def test_weeks_open_on_monday():
    exchange, now = market(1)
    import datetime as dt

    for c in exchange.markets["BTCUSDT"].history.klines("1w", None, None, 5, now):
        assert dt.datetime.fromtimestamp(c.open_time / 1000, dt.UTC).strftime("%a %H:%M") == "Mon 00:00"


def test_the_same_seed_gives_the_same_history():
    def past(seed):
        return history.SyntheticPast(
            "BTCUSDT", seed, 1502928000000, T0 - 3_600_000, 6_500_000, tick=Decimal("0.01"), step=Decimal("0.00001")
        )

    def sample(p):
        day = (p.horizon // 86_400_000) - 400
        return [p.day(day), p.hour(day * 24 + 5), p.minute(day * 1440 + 77), p.second(day * 86_400 + 4321)]

    assert sample(past(3)) == sample(past(3))
    assert sample(past(3)) != sample(past(4))


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 10_000), day=st.integers(0, 3000), hour=st.integers(0, 23), minute=st.integers(0, 59))
def test_splits_aggregate_exactly_and_stay_valid(seed, day, hour, minute):
    p = history.SyntheticPast(
        "ETHBTC", seed, 1499990400000, T0, 4_900, tick=Decimal("0.00001"), step=Decimal("0.001"), quote_usd=65_000.0
    )
    d = p.first_day + day % (p.last_day - p.first_day)
    hours = p._children("h", d)
    minutes = p._children("m", d * 24 + hour)
    seconds = p._children("s", (d * 24 + hour) * 60 + minute)
    assert history.merge(hours) == p.day(d)
    assert history.merge(minutes) == hours[hour]
    assert history.merge(seconds) == minutes[minute]
    assert all(history.valid(n) for n in [p.day(d), *hours, *minutes, *seconds])
