"""The REQUEST_WEIGHT limit every process budgets with (services/contract/limits.py): read from
exchangeInfo's `rateLimits` as weight per minute, so the web tier and the workers agree on it."""

from __future__ import annotations

import pytest

from services.contract.limits import DEFAULT_WEIGHT_LIMIT, budget_limit, weight_limit_per_minute


def weight(limit: int, interval: str = "MINUTE", interval_num: int = 1) -> dict:
    return {"rateLimitType": "REQUEST_WEIGHT", "interval": interval, "intervalNum": interval_num, "limit": limit}


ORDERS_10S = {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100}
ORDERS_DAY = {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000}
CONNECTIONS = {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000}


def test_binances_published_limits_read_as_6000_a_minute():
    info = {"rateLimits": [weight(6000), ORDERS_10S, ORDERS_DAY, CONNECTIONS]}
    assert weight_limit_per_minute(info) == 6000 == DEFAULT_WEIGHT_LIMIT
    assert budget_limit(weight_limit_per_minute(info)) == 5400  # 90 %: headroom for what we can't count


@pytest.mark.parametrize(
    "entry, per_minute",
    [
        (weight(12000, "MINUTE", 2), 6000),  # the limit is per intervalNum x interval: 12000 per 2 minutes
        (weight(360000, "HOUR"), 6000),
        (weight(1000, "MINUTE", 3), 333),  # rounded down: spending it every minute stays under the limit
        (weight(1, "DAY"), 1),  # never a budget of 0
    ],
)
def test_a_longer_window_is_spread_over_its_minutes(entry, per_minute):
    assert weight_limit_per_minute({"rateLimits": [entry]}) == per_minute


def test_the_strictest_request_weight_limit_wins_and_second_windows_are_not_read():
    assert weight_limit_per_minute({"rateLimits": [weight(6000), weight(300000, "HOUR")]}) == 5000
    # a per-second limit cannot be kept by a per-minute count: the minute's limit stands
    assert weight_limit_per_minute({"rateLimits": [weight(50, "SECOND"), weight(6000)]}) == 6000


@pytest.mark.parametrize(
    "info", [{}, {"rateLimits": []}, {"rateLimits": [ORDERS_10S, CONNECTIONS]}, {"rateLimits": None}]
)
def test_no_request_weight_limit_leaves_the_budget_as_it_is(info):
    assert weight_limit_per_minute(info) is None
