"""Random sequences of orders, cancels and price moves: what must hold after every single one."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from paper_exchange import errors
from paper_exchange.engine import LIMIT_TYPES, Exchange, Order, OrderEvent
from paper_exchange.market import MarketSimulator
from paper_exchange.money import floor8
from paper_exchange.symbols import DEFAULT_SYMBOLS

from .engine_state import binance_messages, snapshot

D = Decimal
T0 = 1_700_000_000_000
# Two markets sharing BTC, so one asset is locked by orders on both.
SYMBOLS = tuple(s for s in DEFAULT_SYMBOLS if s.symbol in ("BTCUSDT", "ETHBTC"))
USERS = ("alice", "bob", "carol")
START = {"USDT": D("20000"), "BTC": D("0.4"), "ETH": D("6")}
# On the grid, under the minimum notional, off the grid, and big enough to run out of money.
LOTS = {
    "BTCUSDT": [D(q) for q in ("0.00001", "0.0003", "0.002", "0.01", "0.05", "0.5", "0.000015")],
    "ETHBTC": [D(q) for q in ("0.001", "0.01", "0.1", "0.5", "8", "0.0015")],
}
QUOTE_AMOUNTS = {
    "BTCUSDT": [D(q) for q in ("1", "12", "250", "3000", "30000")],
    "ETHBTC": [D(q) for q in ("0.00005", "0.001", "0.02", "0.5")],
}
KINDS = [  # (type, timeInForce, sized by quoteOrderQty) as the REST adapter lets them through
    ("LIMIT", "GTC", False),
    ("LIMIT", "IOC", False),
    ("LIMIT", "FOK", False),
    ("LIMIT_MAKER", None, False),
    ("MARKET", None, False),
    ("MARKET", None, True),
    ("STOP_LOSS", None, False),
    ("TAKE_PROFIT", None, False),
    ("STOP_LOSS_LIMIT", "GTC", False),
    ("STOP_LOSS_LIMIT", "IOC", False),
    ("TAKE_PROFIT_LIMIT", "GTC", False),
    ("TAKE_PROFIT_LIMIT", "FOK", False),
]


def on_tick(spec, reference: Decimal, bps: int, off_tick: bool) -> Decimal:
    price = max(spec.tick_size, (reference * (1 + D(bps) / 10_000)) // spec.tick_size * spec.tick_size)
    return price + spec.tick_size / 3 if off_tick else price


class Matching(RuleBasedStateMachine):
    """Three users (and, in some runs, the simulated maker and noise trader) trading two markets."""

    @initialize(seed=st.integers(0, 2**16), living=st.booleans())
    def open_exchange(self, seed: int, living: bool) -> None:
        self.ex = Exchange(SYMBOLS, seed=seed)
        for name in USERS:
            self.ex.add_account(name, START)
        self.orders: list[Order] = []  # every order ever accepted, the simulator's too
        self.user_orders: list[Order] = []
        self.filled_qty: dict[int, Decimal] = defaultdict(D)
        self.filled_quote: dict[int, Decimal] = defaultdict(D)
        self.last_event: dict[int, str] = {}
        self.commissions: dict[str, Decimal] = defaultdict(D)
        self.ex.listeners.append(self.check_event)
        self.sim = MarketSimulator(self.ex, seed=seed, levels=6, trade_probability=0.7) if living else None
        self.now = T0
        self.totals = self.nonzero(self.ex.totals())
        if self.sim:
            self.sim.step(self.now)

    @staticmethod
    def nonzero(amounts: dict[str, Decimal]) -> dict[str, Decimal]:
        return {asset: v for asset, v in amounts.items() if v}

    def tick(self, ms: int) -> int:
        self.now += ms
        return self.now

    def reference(self, symbol: str) -> Decimal:
        """Prices are drawn around this: the fair price, or a fixed grid so users meet at one price."""
        if self.sim:
            return D(repr(self.sim.fair[symbol]))
        return self.ex.markets[symbol].spec.start_price

    # -- what the user data stream sees ---------------------------------------------------------

    def check_event(self, event: OrderEvent) -> None:
        order, key = event.order, id(event.order)
        previous = self.last_event.get(key)
        if event.execution == "NEW":
            assert previous is None
            self.orders.append(order)
        else:
            assert previous in ("NEW", "TRADE"), f"{event.execution} after {previous}"
        self.last_event[key] = "DONE" if not order.is_open else event.execution
        if event.execution != "TRADE":
            return
        fill = event.fill
        self.filled_qty[key] += fill.qty
        self.filled_quote[key] += floor8(fill.price * fill.qty)
        spec = self.ex.markets[order.symbol].spec
        rate = order.account.maker_rate if event.is_maker else order.account.taker_rate
        received = fill.qty if order.is_buy else floor8(fill.price * fill.qty)
        assert fill.commission == floor8(received * rate)
        assert fill.commission_asset == (spec.base if order.is_buy else spec.quote)
        self.commissions[fill.commission_asset] += fill.commission
        assert order.status == ("FILLED" if order.remaining == 0 else "PARTIALLY_FILLED")
        if event.is_maker:
            # price-time priority: the maker is at the best price and nothing older waits beside it
            side = self.ex.markets[order.symbol].book.side(order.is_buy)
            level = side.best()
            assert level is not None and level.price == fill.price == order.price
            older = [o for o in level.orders if o is not order and o.working_time < order.working_time]
            assert not older, f"order {order.order_id} filled before older {[o.order_id for o in older]}"

    # -- operations -------------------------------------------------------------------------------

    def attempt(self, call) -> None:
        """Run `call`; a rejection must name a Binance message and leave everything as it was."""
        before = snapshot(self.ex)
        try:
            call()
        except errors.BinanceError as error:
            assert error.msg in binance_messages(error.code), error.msg
            assert snapshot(self.ex) == before

    @rule(
        user=st.sampled_from(USERS),
        symbol=st.sampled_from(sorted(LOTS)),
        kind=st.sampled_from(KINDS),
        side=st.sampled_from(("BUY", "SELL")),
        lot=st.integers(0, 6),
        bps=st.integers(-4, 4),
        stop_bps=st.integers(-20, 20),
        off_tick=st.integers(0, 15),
        client_id=st.sampled_from([None, "a", "b"]),
        ms=st.integers(1, 3000),
    )
    def place(self, user, symbol, kind, side, lot, bps, stop_bps, off_tick, client_id, ms) -> None:
        type_, tif, by_quote = kind
        spec = self.ex.markets[symbol].spec
        reference = self.reference(symbol)
        kw = dict(time_in_force=tif, client_order_id=client_id)
        if by_quote:
            amounts = QUOTE_AMOUNTS[symbol]
            kw["quote_qty"] = amounts[lot % len(amounts)]
        else:
            kw["quantity"] = LOTS[symbol][lot % len(LOTS[symbol])]
        if type_ in LIMIT_TYPES:
            kw["price"] = on_tick(spec, reference, 10 * bps, off_tick == 0)
        if type_.startswith(("STOP", "TAKE")):
            kw["stop_price"] = on_tick(spec, reference, 2 * stop_bps, off_tick == 1)
        now = self.tick(ms)

        def call():
            order = self.ex.place_order(user, symbol, side, type_, now=now, **kw)
            self.user_orders.append(order)

        self.attempt(call)

    @rule(pick=st.integers(0, 10**6), user=st.sampled_from(USERS), lot=st.integers(1, 4), ms=st.integers(1, 3000))
    def join_queue(self, pick, user, lot, ms) -> None:
        """Rest behind an order already waiting at its price, so time priority has something to decide."""
        resting = [o for o in self.orders if o.is_open and o.is_working]
        if not resting:
            return
        order = resting[pick % len(resting)]
        quantity, now = LOTS[order.symbol][lot], self.tick(ms)
        self.attempt(
            lambda: self.user_orders.append(
                self.ex.place_order(
                    user,
                    order.symbol,
                    order.side,
                    "LIMIT",
                    now=now,
                    quantity=quantity,
                    price=order.price,
                    time_in_force="GTC",
                )
            )
        )

    @rule(
        pick=st.integers(0, 10**6),
        how=st.sampled_from(["orderId", "origClientOrderId", "openOrders"]),
        ms=st.integers(1, 3000),
    )
    def cancel(self, pick, how, ms) -> None:
        if not self.user_orders:
            return
        order = self.user_orders[pick % len(self.user_orders)]
        account, symbol, now = order.account, order.symbol, self.tick(ms)
        if how == "openOrders":  # DELETE /api/v3/openOrders
            canceled = self.ex.cancel_all(account.name, symbol, now)
            assert all(o.status == "CANCELED" for o in canceled)
            assert account.open_orders(symbol) == []
            return
        key = dict(order_id=order.order_id) if how == "orderId" else dict(orig_client_order_id=order.client_order_id)
        self.attempt(lambda: self.ex.cancel_order(account.name, symbol, now=now, **key))

    @precondition(lambda self: self.sim is not None)
    @rule(ms=st.integers(100, 5000))
    def step(self, ms) -> None:
        self.sim.step(self.tick(ms))

    @precondition(lambda self: self.sim is not None)
    @rule(symbol=st.sampled_from(sorted(LOTS)), bps=st.integers(-200, 200), ms=st.integers(1, 3000))
    def set_price(self, symbol, bps, ms) -> None:
        price = on_tick(self.ex.markets[symbol].spec, self.reference(symbol), bps, False)
        self.sim.set_price(symbol, price, self.tick(ms))

    # -- what must always hold --------------------------------------------------------------------

    @invariant()
    def nothing_is_created_or_destroyed(self) -> None:
        assert self.nonzero(self.ex.totals()) == self.totals
        # every commission charged went to the fee ledger, and nothing else did
        assert self.nonzero(self.ex.fees) == self.nonzero(self.commissions)
        for account in self.ex.accounts.values():
            for asset, b in account.balances.items():
                assert b.free >= 0 and b.locked >= 0, (account.name, asset, b)

    @invariant()
    def locked_is_what_open_orders_hold(self) -> None:
        for account in self.ex.accounts.values():
            held: dict[str, Decimal] = defaultdict(D)
            for order in account.open.values():
                assert order.locked >= 0
                held[order.lock_asset] += order.locked
            for asset, b in account.balances.items():
                assert b.locked == held.get(asset, 0), (account.name, asset, b.locked, held.get(asset))

    @invariant()
    def books_are_sound(self) -> None:
        for symbol, market in self.ex.markets.items():
            bid, ask = market.book.best_bid(), market.book.best_ask()
            if bid and ask:
                assert bid.price < ask.price, f"{symbol} crossed: {bid.price} >= {ask.price}"
            for side in (market.book.bids, market.book.asks):
                prices = [level.price for level in side]
                assert prices == sorted(prices, reverse=side.is_bid) and len(set(prices)) == len(prices)
                for level in side:
                    assert level.orders and level.qty == sum(o.remaining for o in level.orders)
                    times = [o.working_time for o in level.orders]
                    assert times == sorted(times), "a level is not in arrival order"
                    for o in level.orders:
                        assert o.is_open and o.remaining > 0 and o.price == level.price
                        assert o.is_buy == side.is_bid and o.symbol == symbol
                        assert o.account.open.get((symbol, o.order_id)) is o
            for stop in market.stops:
                assert stop.is_open and not stop.is_working and stop.executed_qty == 0

    @invariant()
    def orders_add_up(self) -> None:
        for order in self.orders:
            key = id(order)
            assert order.executed_qty == self.filled_qty[key] <= order.orig_qty
            assert order.cum_quote == self.filled_quote[key]
            if order.status == "FILLED":
                assert order.remaining == 0
            elif order.orig_qty > 0:
                assert order.remaining > 0
            if order.status == "NEW":
                assert order.executed_qty == 0
            if order.status == "PARTIALLY_FILLED":
                assert 0 < order.executed_qty < order.orig_qty
            if order.is_open:
                market = self.ex.markets[order.symbol]
                resting = market.book.side(order.is_buy).levels.get(order.price)
                in_book = resting is not None and any(o is order for o in resting.orders)
                assert in_book != (order in market.stops), f"open order {order.order_id} is nowhere"
            else:
                assert order.locked == 0
                assert (order.symbol, order.order_id) not in order.account.open


TestMatching = Matching.TestCase
TestMatching.settings = settings(
    max_examples=300, stateful_step_count=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@settings(max_examples=100, deadline=None)
@given(
    makers=st.lists(
        st.tuples(st.sampled_from(USERS), st.sampled_from(["0.001", "0.002", "0.005"])), min_size=2, max_size=8
    ),
    take=st.sampled_from(["0.001", "0.003", "0.006", "0.02"]),
    taker_side=st.sampled_from(["BUY", "SELL"]),
)
def test_same_price_makers_fill_oldest_first(makers, take, taker_side):
    ex = Exchange(SYMBOLS)
    for name in (*USERS, "taker"):
        ex.add_account(name, START)
    maker_side = "SELL" if taker_side == "BUY" else "BUY"
    resting = [
        ex.place_order(
            name, "BTCUSDT", maker_side, "LIMIT", now=T0 + i, quantity=D(qty), price=D("65000"), time_in_force="GTC"
        )
        for i, (name, qty) in enumerate(makers)
    ]
    ex.place_order("taker", "BTCUSDT", taker_side, "MARKET", now=T0 + len(makers), quantity=D(take))

    left = D(take)
    for order in resting:  # in the order they arrived
        expected = min(order.orig_qty, left)
        assert order.executed_qty == expected
        left -= expected
