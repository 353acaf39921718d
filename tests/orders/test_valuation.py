"""The pure rules behind risk limits and Redis keys (no I/O): what an order is worth, in USDT, and key
parts that cannot collide."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, strategies as st

from services.keys import part
from services.risk import Valuation, limits_refusal, order_value

SYMBOLS = {
    "BTCUSDT": {"symbol": "BTCUSDT", "quoteAsset": "USDT", "status": "TRADING"},
    "ETHBTC": {"symbol": "ETHBTC", "quoteAsset": "BTC", "status": "TRADING"},
    "USDTTRY": {"symbol": "USDTTRY", "quoteAsset": "TRY", "status": "TRADING"},
    "BTCTRY": {"symbol": "BTCTRY", "quoteAsset": "TRY", "status": "TRADING"},
    "BTCXYZ": {"symbol": "BTCXYZ", "quoteAsset": "XYZ", "status": "TRADING"},
}


def test_an_order_is_worth_its_quantity_at_the_worst_of_its_prices_and_the_reference():
    sell_low = {"side": "SELL", "type": "LIMIT", "quantity": "2", "price": "10"}
    assert order_value(sell_low, Decimal("100")) == Decimal("200")  # it fills at the market
    buy_high = {"side": "BUY", "type": "LIMIT", "quantity": "2", "price": "150"}
    assert order_value(buy_high, Decimal("100")) == Decimal("300")  # it may pay its limit
    stop = {"side": "SELL", "type": "STOP_LOSS_LIMIT", "quantity": "1", "price": "90", "stopPrice": "95"}
    assert order_value(stop, Decimal("80")) == Decimal("95")
    assert order_value({"type": "MARKET", "quantity": "3"}, Decimal("7")) == Decimal("21")
    assert order_value({"type": "MARKET", "quoteOrderQty": "12.5"}, Decimal("7")) == Decimal("12.5")
    assert order_value({"type": "MARKET", "quantity": "3"}, None) is None


def test_every_quote_asset_converts_to_usdt_or_is_unpriced():
    assert Valuation.for_symbol(SYMBOLS["BTCUSDT"], SYMBOLS) == Valuation("USDT")
    eth_btc = Valuation.for_symbol(SYMBOLS["ETHBTC"], SYMBOLS)  # by the price of BTCUSDT
    assert eth_btc == Valuation("BTC", "BTCUSDT", False)
    assert eth_btc.to_usdt(Decimal("0.05"), Decimal("60000")) == Decimal("3000")
    by_try = Valuation.for_symbol(SYMBOLS["BTCTRY"], SYMBOLS)  # no TRYUSDT: by USDTTRY, inverted
    assert by_try == Valuation("TRY", "USDTTRY", True)
    assert by_try.to_usdt(Decimal("4000"), Decimal("40")) == Decimal("100")
    assert Valuation.for_symbol(SYMBOLS["BTCXYZ"], SYMBOLS) is None
    halted = {**SYMBOLS, "BTCUSDT": {**SYMBOLS["BTCUSDT"], "status": "BREAK"}}
    assert Valuation.for_symbol(SYMBOLS["ETHBTC"], halted) is None  # a symbol not trading prices nothing
    assert Valuation.from_json(by_try.as_json()) == by_try


def test_limits_refuse_what_the_web_tier_and_the_worker_both_refuse():
    limits = {"maxOrderNotional": "1000", "allowedSymbols": ["BTCUSDT", "ETHBTC"]}
    usdt = Valuation("USDT")
    assert limits_refusal(limits, "BTCUSDT", Decimal("999"), usdt) is None
    over = limits_refusal(limits, "BTCUSDT", Decimal("1000.5"), usdt)
    assert over["code"] == "RISK_MAX_NOTIONAL" and over["httpStatus"] == 400 and over["details"]["currency"] == "USDT"
    assert limits_refusal(limits, "BNBUSDT", Decimal("1"), usdt)["code"] == "RISK_SYMBOL_NOT_ALLOWED"
    assert limits_refusal(limits, "ETHBTC", None, None)["code"] == "RISK_UNPRICED"
    assert limits_refusal({"allowedSymbols": None, "maxOrderNotional": None}, "BTCXYZ", None, None) is None


@given(st.text(), st.text(), st.text(), st.text())
def test_encoded_key_parts_never_collide(a, b, c, d):
    if (a, b) != (c, d):
        assert f"{part(a)}:{part(b)}" != f"{part(c)}:{part(d)}"
    assert ":" not in part(a)
