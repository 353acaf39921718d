"""Klines over REST as a charting client asks for them: full pages of every interval, paged with
startTime back to the listing date, contiguous, and the same candles whichever interval sums them."""

from __future__ import annotations

import time
from decimal import Decimal
from itertools import pairwise

import pytest

from paper_exchange.symbols import DEFAULT_SYMBOLS

DAY = 86_400_000
HOUR = 3_600_000
LISTED = {s.symbol: s.listed for s in DEFAULT_SYMBOLS}


def klines(px, **params):
    answer = px.get("/api/v3/klines", **params)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.parametrize("interval, limit, length", [("1h", 100, HOUR), ("1m", 1000, 60_000), ("1d", 1000, DAY)])
def test_seed_scenario_pages_are_full(paper, interval, limit, length):
    rows = klines(paper, symbol="BTCUSDT", interval=interval, limit=limit)
    assert len(rows) == limit
    opens = [r[0] for r in rows]
    assert all(b - a == length for a, b in pairwise(opens))  # contiguous, oldest first
    assert opens[-1] <= time.time() * 1000 < opens[-1] + length  # the newest is the open candle
    assert all(r[6] == r[0] + length - 1 for r in rows)  # close times


def test_paging_with_start_time_reaches_back_to_the_listing_without_gaps_or_repeats(paper):
    # python-binance's historical klines: startTime=0 finds the first candle, then page on
    first = klines(paper, symbol="ETHUSDT", interval="1d", startTime=0, limit=1)
    assert first[0][0] == LISTED["ETHUSDT"]
    opens, start = [], 0
    while True:
        page = klines(paper, symbol="ETHUSDT", interval="1d", startTime=start, limit=1000)
        if not page:
            break
        opens += [r[0] for r in page]
        start = page[-1][0] + DAY
    now = time.time() * 1000
    assert opens[0] == LISTED["ETHUSDT"] and opens[-1] <= now < opens[-1] + DAY
    assert opens == list(range(opens[0], opens[-1] + 1, DAY))
    assert len(opens) > 3 * 365  # years of history


def test_a_page_that_starts_inside_a_candle_begins_with_the_next_one(paper):
    start = LISTED["BTCUSDT"] + 400 * DAY + 5 * HOUR + 1
    rows = klines(paper, symbol="BTCUSDT", interval="1h", startTime=start, limit=3)
    assert [r[0] for r in rows] == [start - 1 + HOUR, start - 1 + 2 * HOUR, start - 1 + 3 * HOUR]
    ending = klines(paper, symbol="BTCUSDT", interval="1h", endTime=start, limit=3)
    assert ending[-1][0] == start - 1  # with endTime, the candle open at that moment is the last


def test_a_day_is_the_sum_of_its_hours_far_back_in_the_past(paper):
    day = LISTED["BNBUSDT"] + 1000 * DAY
    (whole,) = klines(paper, symbol="BNBUSDT", interval="1d", startTime=day, limit=1)
    hours = klines(paper, symbol="BNBUSDT", interval="1h", startTime=day, endTime=day + DAY - 1, limit=1000)
    assert len(hours) == 24
    assert Decimal(whole[1]) == Decimal(hours[0][1]) and Decimal(whole[4]) == Decimal(hours[-1][4])
    assert Decimal(whole[2]) == max(Decimal(h[2]) for h in hours)
    assert Decimal(whole[3]) == min(Decimal(h[3]) for h in hours)
    for position in (5, 7, 9, 10):  # volume, quote volume, taker buy base and quote volumes
        assert Decimal(whole[position]) == sum(Decimal(h[position]) for h in hours)
    assert whole[8] == sum(h[8] for h in hours)  # trade count


def test_nothing_before_the_listing(paper):
    assert klines(paper, symbol="ETHBTC", interval="1h", endTime=LISTED["ETHBTC"] - 1) == []
    assert klines(paper, symbol="ETHBTC", interval="1M", startTime=0, limit=1)[0][0] == 1498867200000  # 2017-07-01
