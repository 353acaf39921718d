"""Binance's 2025–2026 changes on the paper exchange: successful order placements and cancels cost no
request weight (CHANGELOG 2026-03-27), expired orders say why (expiryReason, eR: 2026-03-26/05-06),
the CANCEL_ONLY symbol status (2026-07-07), and a symbol with a UTF-8 name (2025-12)."""

from __future__ import annotations

from decimal import Decimal

from paper_exchange.engine import Exchange
from paper_exchange.symbols import DEFAULT_SYMBOLS, UNICODE_SYMBOL
from tests.paper.ws_client import api_request, connect, signed_params, user_event

WEIGHT = "X-MBX-USED-WEIGHT-1M"


def used(answer) -> int:
    return int(answer.headers[WEIGHT])


def resting_buy(px, client_id: str, **extra):
    return px.signed(
        "POST",
        "/api/v3/order",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.01",
        price="1000.00",
        newClientOrderId=client_id,
        **extra,
    )


def test_successful_orders_and_cancels_cost_no_weight_failed_ones_do(paper):
    paper.admin("POST", "limits", {"reset": True})
    base = used(paper.get("/api/v3/ping"))
    placed = resting_buy(paper, "w-1")
    assert placed.status_code == 200 and used(placed) == base
    canceled = paper.signed("DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="w-1")
    assert canceled.status_code == 200 and used(canceled) == base
    resting_buy(paper, "w-2")
    emptied = paper.signed("DELETE", "/api/v3/openOrders", symbol="BTCUSDT")
    assert emptied.status_code == 200 and used(emptied) == base
    # failures are charged their documented weight (1 each)
    too_big = paper.signed(
        "POST",
        "/api/v3/order",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="5000",
        price="1000.00",
    )
    assert too_big.json()["code"] == -2010 and used(too_big) == base + 1
    unknown = paper.signed("DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="never-placed")
    assert unknown.json()["code"] == -2011 and used(unknown) == base + 2
    nothing_open = paper.signed("DELETE", "/api/v3/openOrders", symbol="BTCUSDT")
    assert nothing_open.status_code == 400 and used(nothing_open) == base + 3
    # everything else is charged as before
    tested = paper.signed("POST", "/api/v3/order/test", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001")
    assert tested.status_code == 200 and used(tested) == base + 4
    assert used(paper.signed("GET", "/api/v3/account")) == base + 24


def test_expired_orders_carry_their_expiry_reason(paper):
    book = paper.get("/api/v3/ticker/bookTicker", symbol="ETHUSDT").json()
    far_below = str((Decimal(book["bidPrice"]) * Decimal("0.5")).quantize(Decimal("0.01")))
    ws = connect(paper, "/ws-api/v3")
    try:
        assert api_request(ws, 1, "userDataStream.subscribe.signature", signed_params(paper))["status"] == 200
        for tif, reason in (("IOC", "UNFILLED_IOC_QUANTITY_EXPIRED"), ("FOK", "UNFILLED_FOK_ORDER_EXPIRED")):
            answer = paper.signed(
                "POST",
                "/api/v3/order",
                symbol="ETHUSDT",
                side="SELL",
                type="LIMIT",
                timeInForce=tif,
                quantity="0.01",
                price=str(Decimal(book["askPrice"]) * 2),
                newOrderRespType="RESULT",
                newClientOrderId=f"x-{tif}",
            )
            body = answer.json()
            assert (body["status"], body["expiryReason"]) == ("EXPIRED", reason), body
            queried = paper.signed("GET", "/api/v3/order", symbol="ETHUSDT", origClientOrderId=f"x-{tif}").json()
            assert queried["expiryReason"] == reason
            report = user_event(ws, "executionReport", c=f"x-{tif}", X="EXPIRED")["event"]
            assert report["eR"] == reason
        acked = paper.signed(
            "POST",
            "/api/v3/order",
            symbol="ETHUSDT",
            side="SELL",
            type="LIMIT",
            timeInForce="IOC",
            quantity="0.01",
            price=str(Decimal(book["askPrice"]) * 2),
            newOrderRespType="ACK",
        )
        assert "expiryReason" not in acked.json()  # ACK answers never show it
        resting = paper.signed(
            "POST",
            "/api/v3/order",
            symbol="ETHUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.01",
            price=far_below,
            newOrderRespType="RESULT",
            newClientOrderId="x-gtc",
        )
        assert resting.json()["status"] == "NEW" and "expiryReason" not in resting.json()
        new_report = user_event(ws, "executionReport", c="x-gtc")["event"]
        assert "eR" not in new_report
        paper.signed("DELETE", "/api/v3/order", symbol="ETHUSDT", origClientOrderId="x-gtc")
    finally:
        ws.close()


def test_a_market_order_the_book_runs_out_on_expires_for_insufficient_liquidity():
    exchange = Exchange(DEFAULT_SYMBOLS)
    exchange.add_account("maker", {"BTC": Decimal(1)})
    exchange.add_account("taker", {"USDT": Decimal(100_000)})
    exchange.place_order(
        "maker", "BTCUSDT", "SELL", "LIMIT", now=1, quantity=Decimal("0.1"), price=Decimal("60000"), time_in_force="GTC"
    )
    order = exchange.place_order("taker", "BTCUSDT", "BUY", "MARKET", now=2, quote_qty=Decimal("10000"))
    assert (order.status, order.expiry_reason) == ("EXPIRED", "INSUFFICIENT_LIQUIDITY")


def test_a_cancel_only_symbol_refuses_new_orders_and_allows_cancels(fresh_paper):
    px = fresh_paper
    assert resting_buy(px, "co-1").status_code == 200
    changed = px.admin("POST", "symbols", {"symbol": "BTCUSDT", "status": "CANCEL_ONLY"})
    assert changed.json()["BTCUSDT"] == "CANCEL_ONLY"
    info = px.get("/api/v3/exchangeInfo", symbol="BTCUSDT").json()
    assert info["symbols"][0]["status"] == "CANCEL_ONLY"
    listed = px.get("/api/v3/exchangeInfo", symbolStatus="CANCEL_ONLY").json()["symbols"]
    assert [s["symbol"] for s in listed] == ["BTCUSDT"]
    mismatch = px.get("/api/v3/exchangeInfo", symbol="ETHUSDT", symbolStatus="CANCEL_ONLY")
    assert mismatch.json() == {"code": -1220, "msg": "The symbol's status does not match the requested symbolStatus."}
    assert px.get("/api/v3/exchangeInfo", symbolStatus="OPEN").json()["code"] == -1122

    refused = resting_buy(px, "co-2")
    assert (refused.status_code, refused.json()) == (400, {"code": -2010, "msg": "Market is closed."})
    canceled = px.signed("DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="co-1")
    assert canceled.status_code == 200 and canceled.json()["status"] == "CANCELED"

    px.admin("POST", "symbols", {"symbol": "BTCUSDT", "status": "TRADING"})
    assert resting_buy(px, "co-3").status_code == 200


def test_the_utf8_symbol_trades_over_rest(paper):
    info = paper.get("/api/v3/exchangeInfo", symbol=UNICODE_SYMBOL).json()["symbols"][0]
    assert (info["symbol"], info["baseAsset"], info["quoteAsset"]) == (UNICODE_SYMBOL, "币安人生", "USDT")
    price = Decimal(paper.get("/api/v3/ticker/price", symbol=UNICODE_SYMBOL).json()["price"])
    bought = paper.signed("POST", "/api/v3/order", symbol=UNICODE_SYMBOL, side="BUY", type="MARKET", quantity="100")
    assert bought.status_code == 200, bought.text
    body = bought.json()
    assert body["symbol"] == UNICODE_SYMBOL and body["status"] == "FILLED"
    assert abs(Decimal(body["cummulativeQuoteQty"]) / 100 / price - 1) < Decimal("0.05")
    assert "币安人生" in paper.balances()
    trades = paper.signed("GET", "/api/v3/myTrades", symbol=UNICODE_SYMBOL).json()
    assert trades and trades[-1]["symbol"] == UNICODE_SYMBOL
    assert paper.get("/api/v3/ticker/price", symbol="币安人生usdt").json()["code"] == -1100  # ASCII stays upper case
