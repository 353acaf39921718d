"""Positions: the average-cost core with hand-computed cases, then GET /api/v1/positions on the stack
with fills at prices the test sets."""

from __future__ import annotations

import time
from decimal import Decimal as D

from services.positions import position, positions, render

# -- the core (services/positions.py), numbers worked out by hand -------------------------------------

_ids = iter(range(1, 10_000))


def trade(side: str, qty: str, price: str, commission: str = "0", asset: str = "USDT", at: int | None = None) -> dict:
    n = next(_ids)
    return {
        "id": n,
        "time": at if at is not None else n,
        "isBuyer": side == "BUY",
        "qty": qty,
        "price": price,
        "commission": commission,
        "commissionAsset": asset,
    }


def test_average_cost_with_quote_commission_and_a_partial_sell():
    trades = [
        trade("BUY", "2", "100", "0.2"),  # 2 for 200.20        avg 100.10
        trade("BUY", "2", "120", "0.24"),  # 4 for 440.44        avg 110.11
        trade("SELL", "1", "130", "0.13"),
    ]  # 129.87 - 110.11 = 19.76 realized; 3 left for 330.33
    p = render(
        {"positions": [position("AAA", "AAAUSDT", D(3), trades, "USDT", D(125))], "summary": {}, "unpriced": []}
    )["positions"][0]
    assert p["averageEntryPrice"] == "110.11000000"
    assert p["costBasis"] == "330.33000000"
    assert p["realizedPnl"] == "19.76000000"
    assert p["unrealizedPnl"] == "44.67000000"  # 3 × 125 - 330.33
    assert p["notional"] == "375.00000000"
    assert p["invested"] == "440.44000000"
    assert p["returnPct"] == "14.63"  # (19.76 + 44.67) / 440.44
    assert p["untrackedQuantity"] == "0.00000000" and p["trades"] == 3


def test_commission_in_the_base_asset_raises_the_average_and_is_a_realized_cost_on_sells():
    trades = [
        trade("BUY", "1", "200", "0.001", "BBB"),  # receives 0.999 for 200: avg 200.2002002...
        trade("SELL", "0.5", "220", "0.0005", "BBB"),
    ]  # gives 0.5005 (cost 100.2002002...) for 110
    p = position("BBB", "BBBUSDT", D("0.4985"), trades, "USDT", D(210))
    assert round(p["averageEntryPrice"], 8) == D("200.20020020")  # a sell leaves the average unchanged
    assert round(p["realizedPnl"], 10) == D("9.7997997998")
    assert round(p["unrealizedPnl"], 10) == D("4.8852002002")  # 0.4985 × 210 - 99.7997997998
    assert p["untrackedQuantity"] == 0


def test_a_balance_without_trades_has_no_entry_price_and_no_pnl():
    p = render({"positions": [position("BNB", "BNBUSDT", D(10), [], "USDT", D(600))], "summary": {}, "unpriced": []})[
        "positions"
    ][0]
    assert p == {
        "asset": "BNB",
        "symbol": "BNBUSDT",
        "quantity": "10.00000000",
        "untrackedQuantity": "10.00000000",
        "averageEntryPrice": None,
        "costBasis": "0.00000000",
        "markPrice": "600.00000000",
        "notional": "6000.00000000",
        "unrealizedPnl": "0.00000000",
        "realizedPnl": "0.00000000",
        "invested": "0.00000000",
        "returnPct": None,
        "trades": 0,
    }


def test_sells_beyond_the_traded_quantity_realize_only_the_tracked_part():
    # 10 ETH held before the history; buy 0.5 (fee 0.0005 ETH), then sell 1 for 3096.90 after fees
    trades = [trade("BUY", "0.5", "3000", "0.0005", "ETH"), trade("SELL", "1", "3100", "3.1")]
    p = position("ETH", "ETHUSDT", D("9.4995"), trades, "USDT", D(3200))
    assert p["realizedPnl"] == D("46.90155")  # 3096.9 × 0.4995 - 1500
    assert p["averageEntryPrice"] is None and p["costBasis"] == 0 and p["unrealizedPnl"] == 0
    assert p["untrackedQuantity"] == D("9.4995") and p["notional"] == D("30398.4")


def test_less_held_than_traded_values_only_what_is_held():
    p = position("AAA", "AAAUSDT", D(1), [trade("BUY", "2", "100")], "USDT", D(110))  # 1 was withdrawn
    assert p["costBasis"] == 100 and p["unrealizedPnl"] == 10 and p["untrackedQuantity"] == 0


def test_trades_are_replayed_in_time_order():
    trades = [trade("SELL", "1", "150", at=3), trade("BUY", "1", "100", at=1), trade("BUY", "1", "120", at=2)]
    p = position("AAA", "AAAUSDT", D(1), trades, "USDT", D(110))
    assert p["realizedPnl"] == 40 and p["averageEntryPrice"] == 110  # 150 - 110, not a sell before any buy


def test_summary_over_held_sold_out_and_unpriced_assets():
    trades = {
        "AAAUSDT": [
            trade("BUY", "2", "100", "0.2"),
            trade("BUY", "2", "120", "0.24"),
            trade("SELL", "1", "130", "0.13"),
        ],
        "CCCUSDT": [trade("BUY", "1", "10"), trade("SELL", "1", "12")],
    }  # sold out: realized 2
    balances = {"AAA": D(3), "BNB": D(10), "USDT": D(500), "XYZ": D(7)}
    symbols = {"AAA": "AAAUSDT", "BNB": "BNBUSDT", "CCC": "CCCUSDT"}
    marks = {"AAAUSDT": D(125), "BNBUSDT": D(600), "CCCUSDT": D(11)}
    report = render(positions(balances, trades, symbols, marks, "USDT"))
    assert [p["asset"] for p in report["positions"]] == ["AAA", "BNB", "CCC"]  # the quote asset is cash
    assert report["unpriced"] == ["XYZ"]
    ccc = report["positions"][2]
    assert ccc["quantity"] == "0.00000000" and ccc["realizedPnl"] == "2.00000000" and ccc["returnPct"] == "20.00"
    assert report["summary"] == {
        "quoteAsset": "USDT",
        "totalNotional": "6375.00000000",
        "totalCostBasis": "330.33000000",
        "totalUnrealizedPnl": "44.67000000",
        "totalRealizedPnl": "21.76000000",
        "totalInvested": "450.44000000",
        "totalReturnPct": "14.75",  # (44.67 + 21.76) / 450.44
    }


# -- GET /api/v1/positions on the stack -----------------------------------------------------------------


def buy_or_sell(stack, side: str, qty: str) -> dict:
    answer = stack.post("/api/v1/order", {"symbol": "ETHUSDT", "side": side, "type": "MARKET", "quantity": qty})
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]


def eth_position(stack, mark: str) -> tuple[dict, dict]:
    """The ETH position once the gateway's ticker cache (1 s) shows the last fill's price."""
    deadline = time.monotonic() + 10
    while True:
        answer = stack.web.get("/api/v1/positions")
        assert answer.status_code == 200, answer.text
        data = answer.json()["data"]
        eth = next(p for p in data["positions"] if p["asset"] == "ETH")
        if D(eth["markPrice"]) == D(mark) or time.monotonic() > deadline:
            return eth, data
        time.sleep(0.2)


def test_positions_follow_fills_at_known_prices(stack):
    stack.paper.pause()
    try:
        held_before = D(stack.paper.balances()["ETH"][0])  # 10 ETH, bought before any history
        # With the market paused at a fair price P, the maker's best ask is exactly P here.
        assert stack.paper.admin("POST", "market", {"symbol": "ETHUSDT", "price": "3000"}).status_code == 200
        first = buy_or_sell(stack, "BUY", "0.1")
        assert [(f["price"], f["qty"], f["commission"], f["commissionAsset"]) for f in first["fills"]] == [
            ("3000.00000000", "0.10000000", "0.00010000", "ETH")
        ]
        eth, _ = eth_position(stack, "3000")
        assert eth["averageEntryPrice"] == "3003.00300300"  # 300 for 0.0999 received
        assert eth["unrealizedPnl"] == "-0.30000000"  # the commission: 0.0999 × 3000 - 300
        assert D(eth["quantity"]) == held_before + D("0.0999")
        assert D(eth["untrackedQuantity"]) == held_before

        assert stack.paper.admin("POST", "market", {"symbol": "ETHUSDT", "price": "3100"}).status_code == 200
        second = buy_or_sell(stack, "BUY", "0.1")
        assert [f["price"] for f in second["fills"]] == ["3100.00000000"]
        eth, data = eth_position(stack, "3100")
        assert eth["averageEntryPrice"] == "3053.05305305"  # 610 for 0.1998
        assert eth["costBasis"] == "610.00000000"
        assert eth["unrealizedPnl"] == "9.38000000"  # 0.1998 × 3100 - 610
        assert eth["realizedPnl"] == "0.00000000" and eth["trades"] == 2
        assert eth["notional"] == f"{(held_before + D('0.1998')) * 3100:.8f}"
        assert eth["returnPct"] == "1.54"  # 9.38 / 610

        # fair 3300: the best bid is 3299.34 (5,000 ticks of 0.66 under 3300 less half the spread)
        assert stack.paper.admin("POST", "market", {"symbol": "ETHUSDT", "price": "3300"}).status_code == 200
        sold = buy_or_sell(stack, "SELL", "0.05")
        assert [(f["price"], f["commission"], f["commissionAsset"]) for f in sold["fills"]] == [
            ("3299.34000000", "0.16496700", "USDT")
        ]
        eth, data = eth_position(stack, "3299.34")
        # proceeds 164.967 - 0.164967 = 164.802033; cost out 610 × 0.05 / 0.1998 = 152.65265265...
        assert eth["realizedPnl"] == "12.14938035"
        assert eth["averageEntryPrice"] == "3053.05305305"  # a sell leaves the average unchanged
        assert eth["costBasis"] == "457.34734735"  # 610 × 0.1498 / 0.1998
        assert eth["unrealizedPnl"] == "36.89378465"  # 0.1498 × 3299.34 - 457.34734735
        assert eth["returnPct"] == "8.04"  # (12.14938035 + 36.89378465) / 610

        btc = next(p for p in data["positions"] if p["asset"] == "BTC")
        assert btc["averageEntryPrice"] is None and btc["unrealizedPnl"] == "0.00000000"
        assert btc["quantity"] == btc["untrackedQuantity"] == "1.00000000"
        assert "USDT" not in [p["asset"] for p in data["positions"]] and data["unpriced"] == []
        summary = data["summary"]
        assert summary["totalRealizedPnl"] == "12.14938035" and summary["totalUnrealizedPnl"] == "36.89378465"
        assert D(summary["totalNotional"]) == sum(D(p["notional"]) for p in data["positions"])
        assert summary["totalReturnPct"] == "8.04" and summary["quoteAsset"] == "USDT"
        assert data["incompleteHistory"] == []
    finally:
        stack.paper.resume()


def test_positions_need_a_token_and_are_documented(stack):
    assert stack.web.get("/api/v1/positions", token="").status_code == 401
    spec = stack.web.http.get(stack.web.url + "/docs/openapi.json", timeout=10).json()
    for path, method in [
        ("/api/v1/positions", "get"),
        ("/api/v1/risk/limits", "get"),
        ("/api/v1/risk/limits", "put"),
        ("/api/v1/admin/kill-switch", "get"),
        ("/api/v1/admin/kill-switch", "post"),
    ]:
        operation = spec["paths"][path][method]
        assert "200" in operation["responses"] and operation["security"] == [{"bearer": []}], (path, method)
    assert "requestBody" in spec["paths"]["/api/v1/admin/kill-switch"]["post"]
