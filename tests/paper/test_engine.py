"""The matching core as a Binance user meets it: fills, statuses, balances, rejections and events."""

from __future__ import annotations

from decimal import Decimal

import pytest

from paper_exchange import errors
from paper_exchange.candles import MINUTE
from paper_exchange.engine import Exchange, OrderEvent
from paper_exchange.market import MarketSimulator
from paper_exchange.symbols import DEFAULT_SYMBOLS, MAX_NUM_ALGO_ORDERS, MAX_NUM_ORDERS

from .engine_state import binance_messages, snapshot

D = Decimal
T0 = 1_700_000_000_000 - 1_700_000_000_000 % (5 * MINUTE)  # a round five minutes, so candles line up
DAY = 1440 * MINUTE
USER_BALANCES = {"USDT": D("100000"), "BTC": D("2"), "ETH": D("10")}


@pytest.fixture
def ex() -> Exchange:
    """A quiet exchange: only the users trade, so every fill is one the test arranged."""
    exchange = Exchange(DEFAULT_SYMBOLS, seed=1)
    for name in ("alice", "bob", "carol"):
        exchange.add_account(name, USER_BALANCES)
    return exchange


@pytest.fixture
def sim(ex) -> MarketSimulator:
    """A living market on top: a noise trade every step, so a moved price also prints a trade."""
    simulator = MarketSimulator(ex, seed=3, levels=10, trade_probability=1.0)
    simulator.step(T0)
    return simulator


class Events:
    """The user data stream of one account, each event as it was when emitted."""

    def __init__(self, exchange: Exchange, account: str):
        self.rows: list[tuple] = []
        self.account = account
        exchange.listeners.append(self.record)

    def record(self, event: OrderEvent) -> None:
        if event.order.account.name == self.account:
            order = event.order
            self.rows.append(((order.symbol, order.order_id), event.execution, order.status, order.executed_qty))

    def of(self, order) -> list[tuple[str, str, Decimal]]:
        return [row[1:] for row in self.rows if row[0] == (order.symbol, order.order_id)]


def place(exchange, account, side, type_, symbol="BTCUSDT", now=T0, **kw):
    return exchange.place_order(account, symbol, side, type_, now=now, **kw)


def limit(exchange, account, side, qty, price, tif="GTC", **kw):
    return place(exchange, account, side, "LIMIT", quantity=D(qty), price=D(price), time_in_force=tif, **kw)


def balance(exchange, account, asset) -> tuple[Decimal, Decimal]:
    b = exchange.accounts[account].balance(asset)
    return b.free, b.locked


def assert_rejected(exchange, code: int, msg: str, call) -> None:
    """`call` is refused with Binance's exact code and text, and nothing a user can see changes."""
    before = snapshot(exchange)
    with pytest.raises(errors.BinanceError) as info:
        call()
    assert (info.value.code, info.value.msg) == (code, msg)
    assert msg in binance_messages(code)
    assert snapshot(exchange) == before


# -- resting, partial fills, time in force ----------------------------------------------------------


def test_limit_buy_rests_on_the_book_and_locks_its_quote(ex):
    events = Events(ex, "alice")
    order = limit(ex, "alice", "BUY", "0.01", "60000")

    assert order.status == "NEW" and order.executed_qty == 0
    assert balance(ex, "alice", "USDT") == (D("99400"), D("600"))
    best = ex.markets["BTCUSDT"].book.best_bid()
    assert (best.price, best.qty) == (D("60000"), D("0.01"))
    assert ex.accounts["alice"].open_orders("BTCUSDT") == [order]
    assert events.of(order) == [("NEW", "NEW", 0)]


def test_partial_fill_then_fill_and_the_seller_is_paid_minus_commission(ex):
    events = Events(ex, "alice")
    sell = limit(ex, "alice", "SELL", "0.03", "65000")
    limit(ex, "bob", "BUY", "0.01", "65000")

    assert (sell.status, sell.executed_qty, sell.cum_quote) == ("PARTIALLY_FILLED", D("0.01"), D("650"))
    assert balance(ex, "alice", "BTC") == (D("1.97"), D("0.02"))

    limit(ex, "bob", "BUY", "0.02", "65000")
    assert (sell.status, sell.executed_qty, sell.cum_quote) == ("FILLED", D("0.03"), D("1950"))
    assert balance(ex, "alice", "BTC") == (D("1.97"), 0)
    assert balance(ex, "alice", "USDT") == (D("100000") + D("1950") - D("1.95"), 0)
    assert events.of(sell) == [
        ("NEW", "NEW", 0),
        ("TRADE", "PARTIALLY_FILLED", D("0.01")),
        ("TRADE", "FILLED", D("0.03")),
    ]
    assert ex.accounts["alice"].open_orders() == []


def test_ioc_fills_what_it_can_and_expires_the_rest(ex):
    events = Events(ex, "alice")
    limit(ex, "bob", "SELL", "0.01", "65000")
    order = limit(ex, "alice", "BUY", "0.03", "65100", tif="IOC")

    assert (order.status, order.executed_qty, order.cum_quote) == ("EXPIRED", D("0.01"), D("650"))
    # bought at the resting price; the unused lock (0.02 at 65100 and the price improvement) is back
    assert balance(ex, "alice", "USDT") == (D("99350"), 0)
    assert balance(ex, "alice", "BTC") == (D("2.00999"), 0)
    book = ex.markets["BTCUSDT"].book
    assert book.best_bid() is None and book.best_ask() is None
    assert events.of(order) == [
        ("NEW", "NEW", 0),
        ("TRADE", "PARTIALLY_FILLED", D("0.01")),
        ("EXPIRED", "EXPIRED", D("0.01")),
    ]


def test_fok_fills_completely_or_not_at_all(ex):
    limit(ex, "bob", "SELL", "0.01", "65000")
    limit(ex, "bob", "SELL", "0.01", "65010")
    events = Events(ex, "alice")
    asks_before = snapshot(ex)["books"]["BTCUSDT"][1]

    too_big = limit(ex, "alice", "BUY", "0.03", "65010", tif="FOK")
    assert (too_big.status, too_big.executed_qty) == ("EXPIRED", 0)
    assert snapshot(ex)["books"]["BTCUSDT"][1] == asks_before
    assert balance(ex, "alice", "USDT") == (D("100000"), 0)
    assert events.of(too_big) == [("NEW", "NEW", 0), ("EXPIRED", "EXPIRED", 0)]

    fits = limit(ex, "alice", "BUY", "0.02", "65010", tif="FOK")
    assert (fits.status, fits.executed_qty, fits.cum_quote) == ("FILLED", D("0.02"), D("1300.1"))
    assert ex.markets["BTCUSDT"].book.best_ask() is None


def test_limit_maker_that_would_cross_is_rejected_and_one_that_would_not_rests(ex):
    limit(ex, "bob", "SELL", "0.01", "65000")
    assert_rejected(
        ex,
        -2010,
        "Order would immediately match and take.",
        lambda: place(ex, "alice", "BUY", "LIMIT_MAKER", quantity=D("0.01"), price=D("65000")),
    )

    maker = place(ex, "alice", "BUY", "LIMIT_MAKER", quantity=D("0.01"), price=D("64999.99"))
    assert maker.status == "NEW"
    assert ex.markets["BTCUSDT"].book.best_bid().price == D("64999.99")


def test_oldest_order_at_a_price_fills_first_but_a_better_price_beats_time(ex):
    first = limit(ex, "bob", "SELL", "0.01", "65000", now=T0)
    second = limit(ex, "carol", "SELL", "0.01", "65000", now=T0 + 1)
    third = limit(ex, "bob", "SELL", "0.01", "65000", now=T0 + 2)
    better = limit(ex, "carol", "SELL", "0.01", "64999", now=T0 + 3)

    taker = limit(ex, "alice", "BUY", "0.025", "65000", now=T0 + 4)

    assert [f.price for f in taker.fills] == [D("64999"), D("65000"), D("65000")]
    assert (better.status, first.status, second.status, third.status) == ("FILLED", "FILLED", "PARTIALLY_FILLED", "NEW")
    assert second.executed_qty == D("0.005")


# -- market orders ----------------------------------------------------------------------------------


def test_market_buy_with_quote_order_qty_spends_at_most_it_on_the_lot_grid(ex):
    limit(ex, "bob", "SELL", "0.01", "65000")
    limit(ex, "bob", "SELL", "0.01", "65100")
    limit(ex, "bob", "SELL", "0.05", "65200")
    events = Events(ex, "alice")

    order = place(ex, "alice", "BUY", "MARKET", quote_qty=D("1000"))

    # 0.01 at 65000 (650), then 350 buys 0.00537 at 65100 (349.587): one more step would cost 0.651
    assert (order.executed_qty, order.cum_quote) == (D("0.01537"), D("999.587"))
    assert order.executed_qty % D("0.00001") == 0
    assert order.cum_quote + D("65100") * D("0.00001") > D("1000")
    assert order.status == "FILLED" and order.orig_qty == order.executed_qty
    assert order.orig_quote_qty == D("1000")
    assert balance(ex, "alice", "USDT") == (D("100000") - D("999.587"), 0)
    assert balance(ex, "alice", "BTC") == (D("2") + D("0.01537") - D("0.00001") - D("0.00000537"), 0)
    assert events.of(order) == [
        ("NEW", "NEW", 0),
        ("TRADE", "PARTIALLY_FILLED", D("0.01")),
        ("TRADE", "FILLED", D("0.01537")),
    ]


def test_market_buy_with_quote_order_qty_expires_when_the_book_runs_out(ex):
    limit(ex, "bob", "SELL", "0.01", "65000")
    order = place(ex, "alice", "BUY", "MARKET", quote_qty=D("1000"))
    assert (order.status, order.executed_qty, order.cum_quote) == ("EXPIRED", D("0.01"), D("650"))
    assert balance(ex, "alice", "USDT") == (D("99350"), 0)


def test_market_sell_walks_the_bids(ex):
    limit(ex, "bob", "BUY", "0.01", "64000")
    limit(ex, "bob", "BUY", "0.02", "63900")

    order = place(ex, "alice", "SELL", "MARKET", quantity=D("0.02"))

    assert (order.status, order.executed_qty, order.cum_quote) == ("FILLED", D("0.02"), D("1279"))
    assert [(f.price, f.qty) for f in order.fills] == [(D("64000"), D("0.01")), (D("63900"), D("0.01"))]
    assert balance(ex, "alice", "BTC") == (D("1.98"), 0)
    assert balance(ex, "alice", "USDT") == (D("100000") + D("1279") - D("1.279"), 0)


def test_market_sell_with_quote_order_qty_receives_at_most_it(ex):
    limit(ex, "bob", "BUY", "0.01", "64000")
    order = place(ex, "alice", "SELL", "MARKET", quote_qty=D("100"))
    assert order.status == "FILLED"
    assert order.executed_qty == D("0.00156") and order.cum_quote == D("99.84")


def test_commission_is_a_tenth_of_a_percent_of_what_each_side_receives(ex):
    limit(ex, "bob", "SELL", "0.1", "65000")
    taker = limit(ex, "alice", "BUY", "0.1", "65000")

    assert [(f.commission, f.commission_asset) for f in taker.fills] == [(D("0.0001"), "BTC")]
    assert balance(ex, "alice", "BTC")[0] == D("2.0999")
    assert balance(ex, "bob", "USDT")[0] == D("100000") + D("6500") - D("6.5")
    bob_trade = ex.accounts["bob"].trades[-1]
    assert (bob_trade.commission, bob_trade.commission_asset, bob_trade.is_maker) == (D("6.5"), "USDT", True)
    assert ex.fees == {"BTC": D("0.0001"), "USDT": D("6.5")}


# -- rejections -------------------------------------------------------------------------------------


def test_duplicate_client_order_id_is_refused_only_while_the_first_is_open(ex):
    first = limit(ex, "alice", "BUY", "0.01", "60000", client_order_id="grid-1")
    assert_rejected(
        ex, -2010, "Duplicate order sent.", lambda: limit(ex, "alice", "BUY", "0.01", "60001", client_order_id="grid-1")
    )

    ex.cancel_order("alice", "BTCUSDT", now=T0, order_id=first.order_id)
    again = limit(ex, "alice", "BUY", "0.01", "60001", client_order_id="grid-1")
    assert again.status == "NEW"

    limit(ex, "bob", "SELL", "0.01", "60001")
    assert again.status == "FILLED"
    assert limit(ex, "alice", "BUY", "0.01", "60000", client_order_id="grid-1").status == "NEW"


FILTER_CASES = {
    "PRICE_FILTER": dict(type_="LIMIT", quantity="0.01", price="65000.001", time_in_force="GTC"),
    "LOT_SIZE": dict(type_="LIMIT", quantity="0.000015", price="65000", time_in_force="GTC"),
    "MARKET_LOT_SIZE": dict(type_="MARKET", quantity="101"),
    "MIN_NOTIONAL": dict(type_="LIMIT", quantity="0.00001", price="65000", time_in_force="GTC"),
    "NOTIONAL": dict(type_="LIMIT", quantity="200", price="65000", time_in_force="GTC"),
}


@pytest.mark.parametrize("name", FILTER_CASES)
def test_each_filter_failure_has_binances_message(ex, name):
    kw = {k: D(v) if k in ("quantity", "price") else v for k, v in FILTER_CASES[name].items()}
    assert_rejected(
        ex, -1013, f"Filter failure: {name}", lambda: ex.place_order("alice", "BTCUSDT", "BUY", now=T0, **kw)
    )


def test_notional_cap_spares_market_orders_as_exchange_info_says(ex):
    notional = next(f for f in ex.markets["BTCUSDT"].spec.filters() if f["filterType"] == "NOTIONAL")
    assert notional["applyMaxToMarket"] is False
    ex.add_account("whale", {"USDT": D("10000000")})
    limit(ex, "bob", "SELL", "1", "65000")
    order = place(ex, "whale", "BUY", "MARKET", quote_qty=D("9500000"))
    assert order.executed_qty == D("1") and order.status == "EXPIRED"  # the book ran out, not the filter


def test_max_num_orders(ex):
    for i in range(MAX_NUM_ORDERS):
        limit(ex, "alice", "BUY", "0.0001", D("60000") + i)
    assert_rejected(ex, -1013, "Filter failure: MAX_NUM_ORDERS", lambda: limit(ex, "alice", "BUY", "0.0001", "59000"))
    # the cap is per account and symbol
    assert limit(ex, "bob", "BUY", "0.0001", "59000").status == "NEW"
    assert (
        place(
            ex, "alice", "BUY", "LIMIT", symbol="ETHUSDT", quantity=D("0.01"), price=D("3000"), time_in_force="GTC"
        ).status
        == "NEW"
    )


def test_max_num_algo_orders(ex):
    def stop(i):
        return place(
            ex,
            "alice",
            "SELL",
            "STOP_LOSS_LIMIT",
            quantity=D("0.0001"),
            price=D("59000"),
            stop_price=D("60000") - i,
            time_in_force="GTC",
        )

    for i in range(MAX_NUM_ALGO_ORDERS):
        assert stop(i).status == "NEW"
    assert_rejected(ex, -1013, "Filter failure: MAX_NUM_ALGO_ORDERS", lambda: stop(MAX_NUM_ALGO_ORDERS))


def test_insufficient_balance_changes_nothing(ex):
    limit(ex, "bob", "SELL", "1", "65000")
    limit(ex, "carol", "SELL", "1", "65000")
    limit(ex, "alice", "BUY", "0.5", "60000")  # locks 30000 of alice's 100000 USDT
    message = "Account has insufficient balance for requested action."
    assert_rejected(ex, -2010, message, lambda: limit(ex, "alice", "BUY", "1.1", "65000"))
    assert_rejected(ex, -2010, message, lambda: limit(ex, "alice", "SELL", "2.1", "70000"))
    # 1.08 at 65000 costs 70200, 200 more than alice has free
    assert_rejected(ex, -2010, message, lambda: place(ex, "alice", "BUY", "MARKET", quantity=D("1.08")))
    assert_rejected(ex, -2010, message, lambda: place(ex, "alice", "BUY", "MARKET", quote_qty=D("70001")))


def test_test_order_is_checked_like_a_real_one_but_changes_nothing(ex):
    limit(ex, "bob", "SELL", "0.01", "65000")
    before = snapshot(ex)
    assert limit(ex, "alice", "BUY", "0.01", "65000", test=True) is None
    assert snapshot(ex) == before
    assert_rejected(
        ex,
        -2010,
        "Account has insufficient balance for requested action.",
        lambda: limit(ex, "alice", "BUY", "2", "65000", test=True),
    )


def test_cancel_of_a_filled_or_canceled_order_is_unknown(ex):
    resting = limit(ex, "alice", "BUY", "0.01", "60000")
    limit(ex, "bob", "SELL", "0.01", "65000")
    filled = limit(ex, "alice", "BUY", "0.01", "65000")
    assert filled.status == "FILLED"

    assert_rejected(
        ex, -2011, "Unknown order sent.", lambda: ex.cancel_order("alice", "BTCUSDT", now=T0, order_id=filled.order_id)
    )
    assert_rejected(
        ex, -2011, "Unknown order sent.", lambda: ex.cancel_order("bob", "BTCUSDT", now=T0, order_id=resting.order_id)
    )

    events = Events(ex, "alice")
    canceled = ex.cancel_order("alice", "BTCUSDT", now=T0, orig_client_order_id=resting.client_order_id)
    assert canceled.status == "CANCELED" and balance(ex, "alice", "USDT")[1] == 0
    assert events.of(resting) == [("CANCELED", "CANCELED", 0)]
    assert_rejected(
        ex, -2011, "Unknown order sent.", lambda: ex.cancel_order("alice", "BTCUSDT", now=T0, order_id=resting.order_id)
    )


def test_cancel_all_cancels_only_that_symbols_open_orders(ex):
    a = limit(ex, "alice", "BUY", "0.01", "60000")
    b = place(ex, "alice", "SELL", "STOP_LOSS", quantity=D("0.01"), stop_price=D("60000"))
    other = place(
        ex, "alice", "BUY", "LIMIT", symbol="ETHUSDT", quantity=D("0.01"), price=D("3000"), time_in_force="GTC"
    )

    assert ex.cancel_all("alice", "BTCUSDT", T0) == [a, b]
    assert (a.status, b.status, other.status) == ("CANCELED", "CANCELED", "NEW")
    assert balance(ex, "alice", "BTC") == (D("2"), 0)
    assert balance(ex, "alice", "USDT") == (D("100000") - D("30"), D("30"))


# -- stops ------------------------------------------------------------------------------------------


def test_stop_that_would_trigger_immediately_is_rejected(ex):
    # no trades yet: the last price is the listing's start price, 65000
    message = "Order would trigger immediately."
    assert_rejected(
        ex,
        -2010,
        message,
        lambda: place(
            ex,
            "alice",
            "SELL",
            "STOP_LOSS_LIMIT",
            quantity=D("0.01"),
            price=D("65900"),
            stop_price=D("66000"),
            time_in_force="GTC",
        ),
    )
    assert_rejected(
        ex, -2010, message, lambda: place(ex, "alice", "BUY", "TAKE_PROFIT", quantity=D("0.01"), stop_price=D("66000"))
    )


@pytest.mark.parametrize(
    "type_, side, stop, price, move_to",
    [
        ("STOP_LOSS", "SELL", "64000", None, "63000"),
        ("STOP_LOSS_LIMIT", "SELL", "64000", "62000", "63000"),
        ("STOP_LOSS", "BUY", "66000", None, "67000"),
        ("TAKE_PROFIT", "SELL", "66000", None, "67000"),
        ("TAKE_PROFIT_LIMIT", "SELL", "66000", "65500", "67000"),
        ("TAKE_PROFIT", "BUY", "64000", None, "63000"),
    ],
)
def test_stop_waits_then_triggers_when_the_price_crosses_and_fills(ex, sim, type_, side, stop, price, move_to):
    events = Events(ex, "alice")
    kw = dict(quantity=D("0.01"), stop_price=D(stop))
    if price is not None:
        kw.update(price=D(price), time_in_force="GTC")
    order = place(ex, "alice", side, type_, now=T0 + 1, **kw)
    assert order.status == "NEW" and not order.is_working

    sim.step(T0 + 1000)
    assert order.status == "NEW", "triggered before the price got there"

    sim.set_price("BTCUSDT", D(move_to), T0 + 2000)
    sim.step(T0 + 3000)  # the noise trader prints a trade at the new price

    assert order.status == "FILLED" and order.executed_qty == D("0.01")
    average = order.cum_quote / order.executed_qty
    assert abs(average - D(move_to)) < 200
    assert balance(ex, "alice", "BTC")[1] == 0 and balance(ex, "alice", "USDT")[1] == 0
    executions = [row[0] for row in events.of(order)]
    assert executions[0] == "NEW" and set(executions[1:]) == {"TRADE"}
    assert events.of(order)[-1][:2] == ("TRADE", "FILLED")


# -- the simulated market ---------------------------------------------------------------------------


def test_resting_order_fills_when_the_price_walks_through_it(ex, sim):
    order = limit(ex, "alice", "BUY", "0.01", "64000", now=T0 + 1)
    assert order.status == "NEW"

    sim.set_price("BTCUSDT", D("63500"), T0 + 2000)

    assert order.status == "FILLED"
    assert order.cum_quote == D("640")  # a resting order fills at its own price
    trade = ex.accounts["alice"].trades[-1]
    assert trade.is_maker and trade.price == D("64000")
    assert balance(ex, "alice", "USDT") == (D("99360"), 0)


def _run_market(seed: int) -> Exchange:
    exchange = Exchange(DEFAULT_SYMBOLS, seed=seed)
    simulator = MarketSimulator(exchange, seed=seed)
    simulator.seed_history(T0, minutes=30)
    for i in range(1, 241):
        simulator.step(T0 + 250 * i)
    return exchange


def test_simulator_is_deterministic_for_a_seed():
    def observed(exchange):
        return {
            symbol: (m.book.depth(100), [(t.id, t.price, t.qty, t.time, t.is_buyer_maker) for t in m.history.trades])
            for symbol, m in exchange.markets.items()
        }

    first, second = observed(_run_market(42)), observed(_run_market(42))
    assert first == second
    assert first["BTCUSDT"][0]["bids"] and first["BTCUSDT"][0]["asks"]
    assert observed(_run_market(43)) != first


def test_klines_and_24h_statistics_agree_with_the_public_trades():
    exchange = _run_market(7)
    now = T0 + 250 * 240
    history = exchange.markets["BTCUSDT"].history
    trades = list(history.trades)
    # from the horizon on, klines are the recorded trades (before it, the synthetic past)
    assert history.horizon == T0 - 30 * MINUTE
    minutes = history.klines("1m", history.horizon, None, 1000, now)
    assert [c.open_time for c in minutes] == sorted({t.time - t.time % MINUTE for t in trades})

    for candle in minutes:
        inside = [t for t in trades if candle.open_time <= t.time < candle.open_time + MINUTE]
        assert candle.volume == sum(t.qty for t in inside)
        assert candle.quote_volume == sum(t.quote_qty for t in inside)
        assert candle.count == len(inside)
        assert (candle.open, candle.close) == (inside[0].price, inside[-1].price)
        assert (candle.high, candle.low) == (max(t.price for t in inside), min(t.price for t in inside))

    five = history.klines("5m", history.horizon, None, 1000, now)
    assert sum(c.volume for c in five) == sum(c.volume for c in minutes)
    assert [c.count for c in five] == [
        sum(m.count for m in minutes if c.open_time <= m.open_time < c.open_time + 5 * MINUTE) for c in five
    ]

    day = history.window(now - DAY, now)
    assert (day.open, day.close) == (minutes[0].open, minutes[-1].close)
    assert day.high == max(c.high for c in minutes) and day.low == min(c.low for c in minutes)
    assert day.volume == sum(c.volume for c in minutes) and day.count == len(trades)
    assert (day.first_id, day.last_id) == (trades[0].id, trades[-1].id)


def test_klines_with_an_end_time_return_the_last_candle_whole():
    history = _run_market(7).markets["BTCUSDT"].history
    now = T0 + 250 * 240
    whole = {c.open_time: (c.volume, c.count) for c in history.klines("5m", None, None, 1000, now)}
    end = T0 - 10 * MINUTE + 2 * MINUTE  # inside a five-minute candle that has trades after it

    last = history.klines("5m", None, end, 1000, now)[-1]
    assert last.open_time == T0 - 10 * MINUTE
    assert (last.volume, last.count) == whole[last.open_time]


def test_average_price_is_the_volume_weighted_price_of_the_last_5_minutes():
    """avgPrice is kept incrementally (every order's filter check reads it); it must equal the walk
    over the trades it replaced, as the window slides and when asked about an earlier moment."""
    import random

    from paper_exchange.candles import MarketHistory

    def walk(history, now):
        trades = [t for t in history.trades if t.time >= now - 5 * MINUTE]
        volume = sum((t.qty for t in trades), Decimal(0))
        return sum((t.quote_qty for t in trades), Decimal(0)) / volume if volume else history.last.price

    rng = random.Random(3)
    history, now = MarketHistory(), 1_700_000_000_000
    for i in range(3000):
        now += rng.choice((0, 1, 50, 400, 2_000, 61_000))
        price = Decimal(65000) + Decimal(rng.randint(-50_000, 50_000)) / 100
        qty = Decimal(rng.randint(1, 5_000_000)) / 10**8
        history.record(price, qty, (price * qty).quantize(Decimal("0.00000001")), now, rng.random() < 0.5)
        if i % 7 == 0:
            assert history.average_price(now) == walk(history, now)
            earlier = now - rng.randint(0, 10 * MINUTE)  # behind the window kept: the walk answers
            assert history.average_price(earlier) == walk(history, earlier)
    assert history.average_price(now + 10 * MINUTE) == history.last.price  # no trade in the window
