"""services/errors.py's tree maps onto the web tier's errors in one place (app/errors.from_service)."""

from __future__ import annotations

import pytest

from app.errors import from_service
from services.errors import ClientOrderIdInUse, InvalidInput, LimitsInvalid, OrderInvalid, ServiceError
from services.filters import check_order
from services.risk import validate_limits


@pytest.mark.parametrize(
    ("exc", "status", "code", "details"),
    [
        (OrderInvalid("side", "'side' must be BUY or SELL"), 400, "INVALID_PARAMETER", {"field": "side"}),
        (
            OrderInvalid("price", "too fine", rule="PRICE_FILTER"),
            400,
            "FILTER_FAILURE",
            {"field": "price", "rule": "PRICE_FILTER"},
        ),
        (
            LimitsInvalid("maxOpenOrders", "'maxOpenOrders' must be ..."),
            400,
            "INVALID_PARAMETER",
            {"field": "maxOpenOrders"},
        ),
        (
            ClientOrderIdInUse("abc", "job1"),
            409,
            "CLIENT_ORDER_ID_IN_USE",
            {"field": "clientOrderId", "clientOrderId": "abc"},
        ),
        (ServiceError("refused"), 400, "BAD_REQUEST", {}),
    ],
    ids=["shape", "filter", "limits", "client-id", "base"],
)
def test_each_service_error_has_one_status_code_and_details(exc, status, code, details):
    error = from_service(exc)
    assert (error.status, error.code, error.details) == (status, code, details)
    assert error.message == exc.message


def test_services_raise_the_tree_not_bare_value_errors():
    with pytest.raises(LimitsInvalid) as limits:
        validate_limits({"maxOpenOrders": 0}, set())
    assert limits.value.field == "maxOpenOrders" and limits.value.message.startswith("'maxOpenOrders' must be")
    with pytest.raises(LimitsInvalid, match="Unknown field 'nope'"):
        validate_limits({"nope": 1}, set())
    symbol = {"symbol": "BTCUSDT", "status": "TRADING", "filters": [], "orderTypes": ["MARKET"]}
    with pytest.raises(InvalidInput) as order:
        check_order({"symbol": "BTCUSDT", "side": "UP", "type": "MARKET", "quantity": "1"}, symbol, None)
    assert isinstance(order.value, OrderInvalid) and order.value.field == "side"
