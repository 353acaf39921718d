"""Market streams of the paper exchange, as a Binance client sees them: the local order book
procedure reproduces the exchange's book, payloads have Binance's fields and agree with REST, and
live SUBSCRIBE / UNSUBSCRIBE / properties behave as web-socket-streams.md says."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from urllib.parse import quote

import pytest
import websocket

from paper_exchange.symbols import UNICODE_SYMBOL
from tests.paper.ws_client import LocalBook, connect, recv_json, reply_to, rest_depth, wait_for
from tests.processes import PaperProcess

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "ETHBTC")


@pytest.fixture(scope="module")
def px():
    """A fast market and stream clock (a step and a diff every 25 ms, not Binance's 100 ms), so every
    symbol's book changes in every diff and a thousand diffs take seconds, not a minute."""
    process = PaperProcess(seed=21, PAPER_STEP_MS="25", PAPER_WS_TICK_MS="25")
    yield process
    process.stop()


@pytest.fixture
def market(px):
    yield px
    px.resume()


def test_diff_depth_stream_rebuilds_the_exchange_book(market):
    """1,000 @depth@100ms events applied to /api/v3/depth snapshots by Binance's documented
    procedure give exactly the exchange's own book, with no gap along the way."""
    px = market
    ws = connect(px, "/stream?streams=" + "/".join(f"{s.lower()}@depth@100ms" for s in SYMBOLS))
    try:
        buffered: dict[str, list] = {s: [] for s in SYMBOLS}
        books: dict[str, LocalBook] = {}
        last_u: dict[str, int] = {}  # u of the last event applied from the stream
        applied = 0
        deadline = time.monotonic() + 60
        while applied < 1000:
            assert time.monotonic() < deadline, f"only {applied} diff events in 60 s"
            message = recv_json(ws)
            assert message["stream"] == message["data"]["s"].lower() + "@depth@100ms"
            event = message["data"]
            symbol = event["s"]
            if symbol in books:
                if symbol in last_u:
                    assert event["U"] == last_u[symbol] + 1, "diff events must be contiguous"
                elif event["u"] <= books[symbol].update_id:
                    continue  # step 5: an event the snapshot already holds (it was on its way)
                else:  # the first event after the snapshot straddles it
                    assert event["U"] <= books[symbol].update_id + 1 <= event["u"]
                assert books[symbol].apply(event)
                last_u[symbol] = event["u"]
                applied += 1
                continue
            buffered[symbol].append(event)
            snapshot = px.get("/api/v3/depth", symbol=symbol, limit=5000).json()
            if snapshot["lastUpdateId"] < buffered[symbol][0]["U"]:
                continue  # step 4: the snapshot is older than the buffer; fetch again later
            book = LocalBook(snapshot)
            pending = [e for e in buffered[symbol] if e["u"] > snapshot["lastUpdateId"]]
            if pending:
                assert pending[0]["U"] <= snapshot["lastUpdateId"] + 1 <= pending[0]["u"]
            for e in pending:
                assert book.apply(e)
                last_u[symbol] = e["u"]
            books[symbol] = book
        assert set(books) == set(SYMBOLS)

        px.pause()  # the book stops changing; the last diff still has to arrive
        final = {s: px.get("/_paper/book", symbol=s).json() for s in SYMBOLS}
        deadline = time.monotonic() + 5
        while any(books[s].update_id != final[s]["lastUpdateId"] for s in SYMBOLS):
            assert time.monotonic() < deadline, "the last diffs before the pause did not arrive"
            event = recv_json(ws)["data"]
            assert books[event["s"]].apply(event)
        for symbol in SYMBOLS:
            assert books[symbol].as_depth() == rest_depth(final[symbol]), symbol
            assert rest_depth(px.get("/api/v3/depth", symbol=symbol, limit=5000).json()) == rest_depth(final[symbol])
    finally:
        ws.close()


def test_payloads_have_binances_fields_and_agree_with_rest(market):
    px = market
    names = [
        "btcusdt@trade",
        "btcusdt@aggTrade",
        "btcusdt@kline_1m",
        "btcusdt@miniTicker",
        "btcusdt@ticker",
        "btcusdt@bookTicker",
        "btcusdt@depth5@100ms",
        "btcusdt@depth@100ms",
    ]
    ws = connect(px, "/stream?streams=" + "/".join(names))
    try:
        first: dict[str, dict] = {}
        wait_for(
            ws,
            lambda m: (
                first.setdefault(m["stream"], m["data"])
                and {"btcusdt@trade", "btcusdt@aggTrade", "btcusdt@depth@100ms"} <= set(first)
            ),
            timeout=15,
        )

        trade = first["btcusdt@trade"]
        assert list(trade) == ["e", "E", "s", "t", "p", "q", "T", "m", "M"]
        rest = px.get("/api/v3/historicalTrades", symbol="BTCUSDT", fromId=trade["t"], limit=1).json()[0]
        assert (rest["id"], rest["price"], rest["qty"], rest["time"], rest["isBuyerMaker"]) == (
            trade["t"],
            trade["p"],
            trade["q"],
            trade["T"],
            trade["m"],
        )

        agg = first["btcusdt@aggTrade"]
        assert list(agg) == ["e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M"]
        rest = px.get("/api/v3/aggTrades", symbol="BTCUSDT", fromId=agg["a"], limit=1).json()[0]
        assert {k: rest[k] for k in ("a", "p", "q", "f", "l", "T", "m")} == {
            k: agg[k] for k in ("a", "p", "q", "f", "l", "T", "m")
        }

        diff = first["btcusdt@depth@100ms"]
        assert list(diff) == ["e", "E", "s", "U", "u", "b", "a"] and diff["e"] == "depthUpdate"

        # With the market paused, periodic streams must show exactly what REST shows.
        px.pause()
        settled = px.get("/api/v3/depth", symbol="BTCUSDT", limit=5)
        book = settled.json()
        partial = wait_for(
            ws,
            lambda m: m["stream"] == "btcusdt@depth5@100ms" and m["data"]["lastUpdateId"] == book["lastUpdateId"],
            timeout=5,
        )["data"]
        assert partial == book

        kline = wait_for(ws, lambda m: m["stream"] == "btcusdt@kline_1m", timeout=5)["data"]
        assert list(kline) == ["e", "E", "s", "k"]
        k = kline["k"]
        assert list(k) == ["t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"]
        row = px.get("/api/v3/klines", symbol="BTCUSDT", interval="1m", startTime=k["t"], limit=1).json()[0]
        assert [row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10]] == [
            k["t"],
            k["o"],
            k["h"],
            k["l"],
            k["c"],
            k["v"],
            k["T"],
            k["q"],
            k["n"],
            k["V"],
            k["Q"],
        ]
        # closed once its minute is over: the first message may be the previous minute's last (the
        # minute ended after the pause), which is closed; the current minute's is not
        assert k["x"] is (kline["E"] > k["T"])

        ticker = wait_for(ws, lambda m: m["stream"] == "btcusdt@ticker", timeout=5)["data"]
        assert list(ticker) == [
            "e",
            "E",
            "s",
            "p",
            "P",
            "w",
            "x",
            "c",
            "Q",
            "b",
            "B",
            "a",
            "A",
            "o",
            "h",
            "l",
            "v",
            "q",
            "O",
            "C",
            "F",
            "L",
            "n",
        ]
        rest = px.get("/api/v3/ticker/24hr", symbol="BTCUSDT").json()
        assert (ticker["c"], ticker["Q"], ticker["b"], ticker["B"], ticker["a"], ticker["A"]) == (
            rest["lastPrice"],
            rest["lastQty"],
            rest["bidPrice"],
            rest["bidQty"],
            rest["askPrice"],
            rest["askQty"],
        )
        mini = wait_for(ws, lambda m: m["stream"] == "btcusdt@miniTicker", timeout=5)["data"]
        assert list(mini) == ["e", "E", "s", "c", "o", "h", "l", "v", "q"] and mini["e"] == "24hrMiniTicker"
        assert mini["c"] == rest["lastPrice"]

        # Moving the price re-quotes the book: bookTicker reports the new best levels at once.
        price = Decimal(rest["lastPrice"]) * Decimal("1.01")
        assert px.admin("POST", "market", {"symbol": "BTCUSDT", "price": f"{price:.2f}"}).status_code == 200
        best = px.get("/api/v3/ticker/bookTicker", symbol="BTCUSDT").json()
        update_id = px.get("/api/v3/depth", symbol="BTCUSDT", limit=5).json()["lastUpdateId"]
        tick = wait_for(ws, lambda m: m["stream"] == "btcusdt@bookTicker" and m["data"]["u"] == update_id, timeout=5)[
            "data"
        ]
        assert list(tick) == ["u", "s", "b", "B", "a", "A"]
        assert (tick["b"], tick["B"], tick["a"], tick["A"]) == (
            best["bidPrice"],
            best["bidQty"],
            best["askPrice"],
            best["askQty"],
        )
    finally:
        ws.close()


def test_subscribe_on_a_live_connection_starts_the_stream(market):
    px = market
    ws = connect(px, "/ws")
    try:
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["ethusdt@depth@100ms", "ethusdt@trade"], "id": 1}))
        assert reply_to(ws, 1) == {"result": None, "id": 1}
        event = wait_for(ws, lambda m: m.get("e") == "depthUpdate", timeout=5)
        assert event["s"] == "ETHUSDT" and "stream" not in event  # a raw connection: unwrapped

        ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
        assert reply_to(ws, 2) == {"result": ["ethusdt@depth@100ms", "ethusdt@trade"], "id": 2}

        ws.send(json.dumps({"method": "SET_PROPERTY", "params": ["combined", True], "id": 3}))
        assert reply_to(ws, 3) == {"result": None, "id": 3}
        wrapped = wait_for(ws, lambda m: "stream" in m, timeout=5)
        assert wrapped["stream"] == "ethusdt@depth@100ms" or wrapped["stream"] == "ethusdt@trade"
        ws.send(json.dumps({"method": "GET_PROPERTY", "params": ["combined"], "id": 4}))
        assert reply_to(ws, 4) == {"result": True, "id": 4}

        ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["ethusdt@depth@100ms"], "id": "abc5"}))
        assert reply_to(ws, "abc5") == {"result": None, "id": "abc5"}
        # Nothing of the dropped stream follows the reply (data already sent came before it).
        end = time.monotonic() + 0.6
        while time.monotonic() < end:
            try:
                message = recv_json(ws, max(0.01, end - time.monotonic()))
            except websocket.WebSocketTimeoutException:
                break
            assert message.get("stream") != "ethusdt@depth@100ms"
    finally:
        ws.close()


def test_bad_control_messages_get_binances_errors_and_the_connection_stays(market):
    px = market
    ws = connect(px, "/stream?streams=btcusdt@aggTrade")
    cases = [
        (
            '{"method": "SUBSCRIBE", "params": ["btcusdt@trade"]}',
            {"error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}, "id": None},
        ),
        (
            '{"method": "SUBSCRIBX", "params": [], "id": 7}',
            {
                "error": {
                    "code": 2,
                    "msg": "Invalid request: unknown variant `SUBSCRIBX`, expected one of `SUBSCRIBE`, "
                    "`UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY` at line 1 "
                    "column 22",
                },
                "id": 7,
            },
        ),
        (
            '{"params": [], "id": 8}',
            {"error": {"code": 2, "msg": "Invalid request: missing field `method` at line 1 column 23"}, "id": 8},
        ),
        (
            '{"method": "SUBSCRIBE", "params": [',
            {"error": {"code": 3, "msg": "Invalid JSON: EOF while parsing a value at line 1 column 35"}, "id": None},
        ),
        (
            '{"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 9}',
            {"error": {"code": 1, "msg": "Invalid value type: expected Boolean"}, "id": 9},
        ),
        (
            '{"method": "GET_PROPERTY", "params": ["compressed"], "id": 10}',
            {"error": {"code": 0, "msg": "Unknown property"}, "id": 10},
        ),
        (
            '{"method": "GET_PROPERTY", "params": [5], "id": 11}',
            {"error": {"code": 2, "msg": "Invalid request: property name must be a string"}, "id": 11},
        ),
        (
            '{"method": "GET_PROPERTY", "params": ["combined", true], "id": 12}',
            {"error": {"code": 2, "msg": "Invalid request: too many parameters"}, "id": 12},
        ),
        (
            '{"method": "SUBSCRIBE", "params": ["btcusdt@nonsense", "btcusdt@trade"], "id": 13}',
            {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 13},
        ),
    ]
    try:
        for text, expected in cases:
            ws.send(text)
            got = wait_for(ws, lambda m: "error" in m or "result" in m, timeout=5)
            assert got == expected, text
            time.sleep(0.25)  # stay under 5 incoming messages a second
        # a rejected SUBSCRIBE subscribes nothing; the connection is still up
        ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 14}))
        assert reply_to(ws, 14) == {"result": ["btcusdt@aggTrade"], "id": 14}
    finally:
        ws.close()


def test_a_connection_holds_at_most_1024_streams(market):
    px = market
    ws = connect(px, "/ws")
    try:
        names = [f"sym{i}usdt@trade" for i in range(1025)]
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": names, "id": 1}))
        assert reply_to(ws, 1)["error"]["code"] == 2
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": names[:1024], "id": 2}))
        assert reply_to(ws, 2) == {"result": None, "id": 2}
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 3}))
        assert reply_to(ws, 3)["error"]["code"] == 2
        ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 4}))
        assert len(reply_to(ws, 4)["result"]) == 1024
    finally:
        ws.close()


def test_a_url_naming_no_stream_stays_open_and_subscribe_works_on_it(market):
    """`/ws/0` (an index some clients put in the path), unknown names, uppercase names and a
    listen key that does not exist: Binance keeps the connection; what is not a stream is ignored."""
    px = market
    for path, kept in (
        ("/ws/0", []),
        ("/ws/btcusdt@nonsense", []),
        ("/ws/no-such-listen-key", []),
        ("/stream?streams=btcusdt@trade/BTCUSDT@trade", ["btcusdt@trade"]),
    ):
        ws = connect(px, path)
        try:
            ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
            assert reply_to(ws, 1) == {"result": kept, "id": 1}, path
        finally:
            ws.close()
    ws = connect(px, "/ws/0")
    try:
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["bnbusdt@depth@100ms"], "id": 7}))
        assert reply_to(ws, 7) == {"result": None, "id": 7}
        event = wait_for(ws, lambda m: m.get("e") == "depthUpdate", timeout=5, what="a diff on /ws/0")
        assert event["s"] == "BNBUSDT" and "stream" not in event
    finally:
        ws.close()


def test_combined_connections_without_streams_or_subscribing_later_get_wrapped_events(market):
    px = market
    for path in ("/stream", "/stream?streams=", "/stream?streams=btcusdt@trade"):
        ws = connect(px, path)
        try:
            ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["ethbtc@depth@100ms"], "id": 3}))
            assert reply_to(ws, 3) == {"result": None, "id": 3}
            wrapped = wait_for(ws, lambda m: m.get("stream") == "ethbtc@depth@100ms", timeout=5, what=path)
            assert wrapped["data"]["e"] == "depthUpdate" and wrapped["data"]["s"] == "ETHBTC"
            ws.send(json.dumps({"method": "GET_PROPERTY", "params": ["combined"], "id": 4}))
            assert reply_to(ws, 4) == {"result": True, "id": 4}
        finally:
            ws.close()


def test_the_utf8_symbol_streams_under_its_url_encoded_name(market):
    """Stream names lower only ASCII letters (币安人生usdt@...); URLs may percent-encode them
    (CHANGELOG 2025-12-02), and the events carry the symbol in UTF-8."""
    px = market
    name = UNICODE_SYMBOL.replace("USDT", "usdt") + "@depth@100ms"
    for path in ("/ws/" + quote(name), "/stream?streams=" + quote(name)):
        ws = connect(px, path)
        try:
            event = wait_for(ws, lambda m: (m.get("data") or m).get("e") == "depthUpdate", timeout=5, what=path)
            assert (event.get("data") or event)["s"] == UNICODE_SYMBOL
            assert event.get("stream", name) == name
        finally:
            ws.close()
