"""An unmodified third-party client (python-binance) works against the paper exchange with nothing
changed but its base URL: the proof that the paper exchange speaks Binance."""

from __future__ import annotations

import time
from decimal import Decimal
from itertools import pairwise

import pytest
from binance.client import Client
from binance.exceptions import BinanceAPIException


@pytest.fixture
def client(fresh_paper):
    c = Client(fresh_paper.key, fresh_paper.secret, ping=False)
    c.API_URL = fresh_paper.url + "/api"  # the only change: the base URL
    yield c
    c.close_connection()


def test_public_endpoints(client):
    assert client.ping() == {}
    server_time = client.get_server_time()["serverTime"]
    assert abs(server_time - time.time() * 1000) < 5000

    info = client.get_exchange_info()
    symbols = {s["symbol"]: s for s in info["symbols"]}
    assert {"BTCUSDT", "ETHUSDT", "BNBUSDT", "ETHBTC"} <= set(symbols)
    filters = {f["filterType"] for f in symbols["BTCUSDT"]["filters"]}
    assert {"PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "NOTIONAL", "MIN_NOTIONAL"} <= filters
    assert client.get_symbol_info("ETHBTC")["quoteAsset"] == "BTC"

    price = Decimal(client.get_symbol_ticker(symbol="BTCUSDT")["price"])
    book = client.get_order_book(symbol="BTCUSDT", limit=10)
    best_bid, best_ask = Decimal(book["bids"][0][0]), Decimal(book["asks"][0][0])
    assert len(book["bids"]) == 10 and len(book["asks"]) == 10
    assert best_bid < best_ask
    assert best_bid * Decimal("0.99") < price < best_ask * Decimal("1.01")

    klines = client.get_klines(symbol="BTCUSDT", interval=Client.KLINE_INTERVAL_1MINUTE, limit=50)
    assert len(klines) == 50
    assert all(k[0] < n[0] for k, n in pairwise(klines))
    for k in klines:
        assert Decimal(k[3]) <= min(Decimal(k[1]), Decimal(k[4])) <= max(Decimal(k[1]), Decimal(k[4])) <= Decimal(k[2])


def test_limit_order_lifecycle(client):
    book = client.get_order_book(symbol="BTCUSDT", limit=5)
    price = (Decimal(book["bids"][0][0]) * Decimal("0.9")).quantize(Decimal("0.01"))
    usdt_before = _free(client, "USDT")

    order = client.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price=str(price))
    assert order["status"] == "NEW"
    assert order["price"] == f"{price:.8f}" and order["origQty"] == "0.00100000"
    locked = price * Decimal("0.001")
    assert _free(client, "USDT") == usdt_before - locked

    fetched = client.get_order(symbol="BTCUSDT", orderId=order["orderId"])
    assert fetched["clientOrderId"] == order["clientOrderId"] and fetched["status"] == "NEW"
    assert [o["orderId"] for o in client.get_open_orders(symbol="BTCUSDT")] == [order["orderId"]]

    canceled = client.cancel_order(symbol="BTCUSDT", orderId=order["orderId"])
    assert canceled["status"] == "CANCELED"
    assert client.get_open_orders(symbol="BTCUSDT") == []
    assert _free(client, "USDT") == usdt_before

    with pytest.raises(BinanceAPIException) as exc:
        client.cancel_order(symbol="BTCUSDT", orderId=order["orderId"])
    assert exc.value.code == -2011 and exc.value.message == "Unknown order sent."


def test_market_order_fills_and_shows_in_trades_and_account(client):
    btc_before, usdt_before = _free(client, "BTC"), _free(client, "USDT")
    order = client.order_market_buy(symbol="BTCUSDT", quantity="0.01")
    assert order["status"] == "FILLED"
    assert Decimal(order["executedQty"]) == Decimal("0.01")
    spent = sum(Decimal(f["price"]) * Decimal(f["qty"]) for f in order["fills"])
    commission = sum(Decimal(f["commission"]) for f in order["fills"])
    assert all(f["commissionAsset"] == "BTC" for f in order["fills"])
    assert Decimal(order["cummulativeQuoteQty"]) == spent
    assert _free(client, "BTC") == btc_before + Decimal("0.01") - commission
    assert _free(client, "USDT") == usdt_before - spent

    trades = client.get_my_trades(symbol="BTCUSDT")
    mine = [t for t in trades if t["orderId"] == order["orderId"]]
    assert sum(Decimal(t["qty"]) for t in mine) == Decimal("0.01")
    assert all(t["isBuyer"] and not t["isMaker"] for t in mine)

    sold = client.order_market_sell(symbol="BTCUSDT", quantity="0.005")
    assert sold["status"] == "FILLED" and sold["side"] == "SELL"


def test_rejections_come_back_as_binance_exceptions(client):
    with pytest.raises(BinanceAPIException) as exc:
        client.order_limit_buy(symbol="BTCUSDT", quantity="100", price="60000")
    assert exc.value.code == -2010
    assert exc.value.message == "Account has insufficient balance for requested action."
    with pytest.raises(BinanceAPIException) as exc:
        client.get_symbol_ticker(symbol="NOPE")
    assert exc.value.code == -1121 and exc.value.message == "Invalid symbol."


def _free(client: Client, asset: str) -> Decimal:
    return Decimal(client.get_asset_balance(asset=asset)["free"])
