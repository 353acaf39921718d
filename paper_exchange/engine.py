"""The matching core: accounts, orders, price-time matching, stops, commissions. No I/O.

Every public method takes the current time in milliseconds, so a run is deterministic given its
inputs (and the simulator's seed). Rejections raise `BinanceError` with Binance's codes and messages
before anything changes. Observers registered in `listeners` are told about every order state
change (the user data stream is built on them).

Balances: an account's asset is split into `free` and `locked`; an order locks what it may spend
(quote for a buy at its limit price, base for a sell) and spends from that lock as it fills.
Commissions are moved to the exchange's fee ledger, so the sum of every account plus the fees is
constant: nothing is created or destroyed.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from . import errors
from .book import OrderBook
from .candles import MarketHistory
from .money import ZERO, floor8
from .symbols import MAX_NUM_ALGO_ORDERS, MAX_NUM_ORDERS, SymbolSpec

LIMIT_TYPES = {"LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"}
STOP_TYPES = {"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"}
OPEN_STATUSES = {"NEW", "PARTIALLY_FILLED"}
DEFAULT_MAKER_RATE = Decimal("0.001")
DEFAULT_TAKER_RATE = Decimal("0.001")
ALPHABET = string.ascii_letters + string.digits


@dataclass
class Balance:
    free: Decimal = ZERO
    locked: Decimal = ZERO


@dataclass
class Fill:
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    trade_id: int


@dataclass
class AccountTrade:
    """One side of a trade, as `myTrades` reports it."""

    symbol: str
    id: int
    order_id: int
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool


@dataclass(eq=False)
class Order:
    account: Account
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str | None
    price: Decimal
    orig_qty: Decimal
    orig_quote_qty: Decimal
    stop_price: Decimal
    time: int
    update_time: int
    working_time: int
    is_working: bool
    status: str = "NEW"
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    lock_asset: str = ""
    locked: Decimal = ZERO
    reserve_at_price: bool = True  # buy locks are price*qty per unit; market buys spend from a pool
    fills: list[Fill] = field(default_factory=list)
    orig_client_order_id: str | None = None  # set on cancel: Binance answers with both ids
    expiry_reason: str | None = None  # why an EXPIRED order expired (enums.md "Expiry Reasons", 2026-05)
    cancel_client_order_id: str | None = None

    @property
    def is_buy(self) -> bool:
        return self.side == "BUY"

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(eq=False)
class Account:
    name: str
    balances: dict[str, Balance] = field(default_factory=dict)
    maker_rate: Decimal = DEFAULT_MAKER_RATE
    taker_rate: Decimal = DEFAULT_TAKER_RATE
    orders: dict[tuple[str, int], Order] = field(default_factory=dict)
    by_client_id: dict[tuple[str, str], Order] = field(default_factory=dict)
    trades: list[AccountTrade] = field(default_factory=list)
    update_time: int = 0
    open: dict[tuple[str, int], Order] = field(default_factory=dict)
    keep_history: bool = True  # the simulated counterparties forget closed orders and trades

    def balance(self, asset: str) -> Balance:
        bal = self.balances.get(asset)
        if bal is None:
            bal = self.balances[asset] = Balance()
        return bal

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self.open.values() if symbol is None or o.symbol == symbol]


@dataclass(frozen=True)
class OrderEvent:
    """An order changed: `execution` is Binance's executionType (NEW, TRADE, CANCELED, EXPIRED...)."""

    order: Order
    execution: str
    fill: Fill | None
    time: int
    is_maker: bool = False
    reject_reason: str = "NONE"


class Market:
    """A symbol's live state: rules, book, pending stop orders and public history."""

    def __init__(self, spec: SymbolSpec):
        self.spec = spec
        self.book = OrderBook(spec.symbol)
        self.stops: list[Order] = []
        self.history = MarketHistory()
        self.next_order_id = 1

    @property
    def last_price(self) -> Decimal:
        last = self.history.last
        return last.price if last else self.spec.start_price


class Exchange:
    """All markets and accounts. The REST/WS adapters and the market simulator drive it."""

    def __init__(self, symbols: Iterable[SymbolSpec], seed: int = 0):
        self.markets: dict[str, Market] = {s.symbol: Market(s) for s in symbols}
        self.accounts: dict[str, Account] = {}
        self.fees: dict[str, Decimal] = {}
        self.listeners: list[Callable[[OrderEvent], None]] = []
        self._ids = random.Random(f"client-order-ids:{seed}")

    # -- accounts -----------------------------------------------------------------------------------

    def add_account(
        self,
        name: str,
        balances: dict[str, Decimal],
        maker_rate=DEFAULT_MAKER_RATE,
        taker_rate=DEFAULT_TAKER_RATE,
        keep_history: bool = True,
    ) -> Account:
        account = Account(
            name,
            {a: Balance(free=Decimal(v)) for a, v in balances.items()},
            maker_rate,
            taker_rate,
            keep_history=keep_history,
        )
        self.accounts[name] = account
        return account

    def market(self, symbol: str) -> Market:
        market = self.markets.get(symbol)
        if market is None:
            raise errors.bad_symbol()
        return market

    def totals(self) -> dict[str, Decimal]:
        """Every asset held anywhere (free + locked, all accounts, plus fees): constant over time."""
        total: dict[str, Decimal] = dict(self.fees)
        for account in self.accounts.values():
            for asset, bal in account.balances.items():
                total[asset] = total.get(asset, ZERO) + bal.free + bal.locked
        return total

    # -- placing ------------------------------------------------------------------------------------

    def new_client_order_id(self) -> str:
        n, chars = self._ids.getrandbits(130), []
        for _ in range(22):
            n, r = divmod(n, 62)
            chars.append(ALPHABET[r])
        return "".join(chars)

    def validate_order(
        self,
        account: Account,
        symbol: str,
        side: str,
        type_: str,
        *,
        quantity: Decimal | None,
        quote_qty: Decimal | None,
        price: Decimal | None,
        stop_price: Decimal | None,
        time_in_force: str | None,
        client_order_id: str | None,
    ) -> Market:
        """Every check Binance makes before an order reaches the book; raises, changes nothing."""
        market = self.market(symbol)
        spec = market.spec
        if spec.status != "TRADING":
            raise errors.new_order_rejected(errors.MARKET_CLOSED)
        if type_ not in spec.order_types:
            raise errors.invalid_order_type()
        if client_order_id is not None:
            existing = account.by_client_id.get((symbol, client_order_id))
            if existing is not None and existing.is_open:
                raise errors.new_order_rejected(errors.DUPLICATE_ORDER)
        if price is not None and type_ in LIMIT_TYPES:
            spec.check_price(price)
        if stop_price is not None:
            spec.check_price(stop_price)
        is_market = type_ in {"MARKET", "STOP_LOSS", "TAKE_PROFIT"}
        if quantity is not None:
            spec.check_lot(quantity, market=is_market)
        reference = price if type_ in LIMIT_TYPES else self.average_price(market)
        if quote_qty is not None:
            spec.check_notional(quote_qty, market=is_market)
        elif quantity is not None and reference is not None:
            if reference * quantity <= 0:
                raise errors.price_qty_zero()
            spec.check_notional(reference * quantity, market=is_market)
        if type_ in STOP_TYPES:
            if sum(1 for o in market.stops if o.account is account) >= MAX_NUM_ALGO_ORDERS:
                raise errors.filter_failure("MAX_NUM_ALGO_ORDERS")
            if self._stop_triggered(type_, side, stop_price, market.last_price):
                raise errors.new_order_rejected(errors.WOULD_TRIGGER)
        if len(account.open_orders(symbol)) >= MAX_NUM_ORDERS:
            raise errors.filter_failure("MAX_NUM_ORDERS")
        if type_ == "LIMIT_MAKER" and self._would_take(market, side == "BUY", price):
            raise errors.new_order_rejected(errors.WOULD_TAKE)
        return market

    def place_order(
        self,
        account_name: str,
        symbol: str,
        side: str,
        type_: str,
        *,
        now: int,
        quantity: Decimal | None = None,
        quote_qty: Decimal | None = None,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
        test: bool = False,
    ) -> Order:
        """Validate, lock funds, match and rest an order; returns it with this request's fills."""
        account = self.accounts[account_name]
        market = self.validate_order(
            account,
            symbol,
            side,
            type_,
            quantity=quantity,
            quote_qty=quote_qty,
            price=price,
            stop_price=stop_price,
            time_in_force=time_in_force,
            client_order_id=client_order_id,
        )
        is_buy = side == "BUY"
        spec = market.spec
        lock_asset = spec.quote if is_buy else spec.base
        # What the order may spend, decided before anything is changed.
        reserve_at_price = True
        if type_ == "MARKET" and quote_qty is not None:
            if is_buy:
                lock, reserve_at_price = quote_qty, False
            else:
                lock = self._quote_market_sell_qty(market, quote_qty)
        elif type_ == "MARKET":
            if is_buy:
                cost = self._market_cost(market, quantity)
                if cost is None:  # not enough liquidity to price it: lock what the account has
                    cost = account.balance(lock_asset).free
                lock, reserve_at_price = cost, False
            else:
                lock = quantity
        elif type_ in {"STOP_LOSS", "TAKE_PROFIT"}:
            lock = quantity * stop_price if is_buy else quantity
            reserve_at_price = False
        else:
            lock = price * quantity if is_buy else quantity
        balance = account.balance(lock_asset)
        if type_ == "MARKET" and quote_qty is not None and not is_buy and lock <= 0:
            raise errors.new_order_rejected(errors.NO_LIQUIDITY)
        if lock > balance.free:
            raise errors.new_order_rejected(errors.INSUFFICIENT_BALANCE)
        if test:
            return None  # type: ignore[return-value]

        order = Order(
            account=account,
            symbol=symbol,
            order_id=market.next_order_id,
            client_order_id=client_order_id or self.new_client_order_id(),
            side=side,
            type=type_,
            time_in_force=time_in_force,
            price=price if type_ in LIMIT_TYPES else ZERO,
            orig_qty=quantity if quantity is not None else ZERO,
            orig_quote_qty=quote_qty if quote_qty is not None else ZERO,
            stop_price=stop_price if stop_price is not None else ZERO,
            time=now,
            update_time=now,
            working_time=now,
            is_working=type_ not in STOP_TYPES,
            lock_asset=lock_asset,
            reserve_at_price=reserve_at_price,
        )
        market.next_order_id += 1
        account.orders[(symbol, order.order_id)] = order
        account.open[(symbol, order.order_id)] = order
        account.by_client_id[(symbol, order.client_order_id)] = order
        balance.free -= lock
        balance.locked += lock
        order.locked = lock
        account.update_time = now
        if type_ == "MARKET" and quote_qty is not None:
            # Binance turns quoteOrderQty into the quantity the book offers for it (on the LOT_SIZE
            # grid), so the order ends FILLED when the budget is spent and EXPIRED only if the book
            # ran out; its TRADE events carry the right status on the way.
            order.orig_qty = self._quote_market_buy_qty(market, quote_qty) if is_buy else lock
        self._emit(OrderEvent(order, "NEW", None, now))

        if type_ in STOP_TYPES:
            order.working_time = -1
            market.stops.append(order)
            return order
        self._execute(market, order, now)
        self._run_stops(market, now)
        return order

    def _execute(self, market: Market, order: Order, now: int) -> None:
        """Match a working order against the book, then rest, expire or finish it."""
        if order.time_in_force == "FOK" and not self._can_fill(market, order):
            pass
        else:
            self._match(market, order, now)
        market.history.end_aggregation()
        if order.status in {"FILLED"}:
            self._finish(order, now)
            return
        rests = order.type in LIMIT_TYPES and order.time_in_force in (None, "GTC") and order.remaining > 0
        if rests:
            market.book.add(order)
        else:
            order.status = "EXPIRED"
            order.expiry_reason = {"FOK": "UNFILLED_FOK_ORDER_EXPIRED", "IOC": "UNFILLED_IOC_QUANTITY_EXPIRED"}.get(
                order.time_in_force or "", "INSUFFICIENT_LIQUIDITY"
            )  # a market order the book ran out on
            order.update_time = now
            self._finish(order, now)
            self._emit(OrderEvent(order, "EXPIRED", None, now))

    def _match(self, market: Market, taker: Order, now: int) -> None:
        book = market.book
        opposite = book.side(not taker.is_buy)
        limit = taker.price if taker.type in LIMIT_TYPES else None
        spec = market.spec
        while taker.remaining > 0:
            level = opposite.best()
            if level is None or not opposite.crosses(level.price, limit):
                break
            maker = level.orders[0]
            qty = min(maker.remaining, taker.remaining)
            if taker.is_buy and not taker.reserve_at_price:
                # a pool-funded buy (market) never spends more than it locked
                affordable = spec.round_qty_down(taker.locked / level.price) if taker.locked > 0 else ZERO
                qty = min(qty, affordable)
                if qty <= 0:
                    break
            self._trade(market, taker, maker, level.price, qty, now)
            level.qty -= qty
            if maker.remaining == 0:
                level.orders.popleft()
                opposite.remove_level_if_empty(level)
                self._finish(maker, now)
            book.touch(maker.is_buy, level.price)

    def _trade(self, market: Market, taker: Order, maker: Order, price: Decimal, qty: Decimal, now: int) -> None:
        spec = market.spec
        quote = floor8(price * qty)
        buyer, seller = (taker, maker) if taker.is_buy else (maker, taker)
        trade = market.history.record(price, qty, quote, now, is_buyer_maker=maker.is_buy, taker=taker)
        for order, is_maker in ((taker, False), (maker, True)):
            account = order.account
            rate = account.maker_rate if is_maker else account.taker_rate
            base, quote_bal = account.balance(spec.base), account.balance(spec.quote)
            if order is buyer:
                spend = order.price * qty if order.reserve_at_price else quote
                quote_bal.locked -= spend
                order.locked -= spend
                quote_bal.free += spend - quote
                commission, commission_asset = floor8(qty * rate), spec.base
                base.free += qty - commission
            else:
                base.locked -= qty
                order.locked -= qty
                commission, commission_asset = floor8(quote * rate), spec.quote
                quote_bal.free += quote - commission
            self.fees[commission_asset] = self.fees.get(commission_asset, ZERO) + commission
            order.executed_qty += qty
            order.cum_quote += quote
            order.update_time = now
            order.status = "FILLED" if order.remaining == 0 else "PARTIALLY_FILLED"
            account.update_time = now
            fill = Fill(price, qty, commission, commission_asset, trade.id)
            if order is taker:
                order.fills.append(fill)
            if account.keep_history:
                account.trades.append(
                    AccountTrade(
                        spec.symbol,
                        trade.id,
                        order.order_id,
                        price,
                        qty,
                        quote,
                        commission,
                        commission_asset,
                        now,
                        is_buyer=order is buyer,
                        is_maker=is_maker,
                    )
                )
            self._emit(OrderEvent(order, "TRADE", fill, now, is_maker=is_maker))

    def _finish(self, order: Order, now: int) -> None:
        """An order left the book for good: give back whatever it still has locked."""
        if order.locked:
            bal = order.account.balance(order.lock_asset)
            bal.locked -= order.locked
            bal.free += order.locked
            order.locked = ZERO
        order.is_working = order.is_working and order.status in OPEN_STATUSES
        account = order.account
        key = (order.symbol, order.order_id)
        account.open.pop(key, None)
        if not account.keep_history:
            account.orders.pop(key, None)
            if account.by_client_id.get((order.symbol, order.client_order_id)) is order:
                del account.by_client_id[(order.symbol, order.client_order_id)]

    # -- stops ---------------------------------------------------------------------------------------

    @staticmethod
    def _stop_triggered(type_: str, side: str, stop: Decimal | None, last: Decimal) -> bool:
        if stop is None:
            return False
        rises = (type_.startswith("STOP_LOSS") and side == "BUY") or (
            type_.startswith("TAKE_PROFIT") and side == "SELL"
        )
        return last >= stop if rises else last <= stop

    def _run_stops(self, market: Market, now: int) -> None:
        """Trigger every stop whose price the last trade reached; a trigger can trade and trigger more."""
        while True:
            last = market.last_price
            fired = [o for o in market.stops if self._stop_triggered(o.type, o.side, o.stop_price, last)]
            if not fired:
                return
            for order in fired:
                market.stops.remove(order)
                order.is_working = True
                order.working_time = now
                order.update_time = now
                if order.type in {"STOP_LOSS", "TAKE_PROFIT"}:
                    # becomes a market order: a buy re-prices its funding at trigger time
                    if order.is_buy:
                        bal = order.account.balance(order.lock_asset)
                        cost = self._market_cost(market, order.orig_qty)
                        extra = (cost or ZERO) - order.locked
                        if cost is None or extra > bal.free:
                            order.status = "EXPIRED"
                            # no book to price it, or no funds for it at trigger time: refused there
                            order.expiry_reason = "INSUFFICIENT_LIQUIDITY" if cost is None else "REJECTED"
                            self._finish(order, now)
                            self._emit(OrderEvent(order, "EXPIRED", None, now))
                            continue
                        if extra > 0:
                            bal.free -= extra
                            bal.locked += extra
                            order.locked += extra
                self._execute(market, order, now)

    def on_trade_tick(self, symbol: str, now: int) -> None:
        self._run_stops(self.market(symbol), now)

    # -- pricing helpers ----------------------------------------------------------------------------

    def average_price(self, market: Market, now: int | None = None) -> Decimal | None:
        last = market.history.last
        if last is None:
            return market.spec.start_price
        return market.history.average_price(now if now is not None else last.time)

    @staticmethod
    def _would_take(market: Market, is_buy: bool, price: Decimal | None) -> bool:
        best = market.book.side(not is_buy).best()
        if best is None or price is None:
            return False
        return best.price <= price if is_buy else best.price >= price

    @staticmethod
    def _market_cost(market: Market, qty: Decimal) -> Decimal | None:
        """Quote needed to buy `qty` at market now (None if the book cannot fill it)."""
        need, cost = qty, ZERO
        for level in market.book.asks:
            take = min(need, level.qty)
            cost += floor8(level.price * take)
            need -= take
            if need <= 0:
                return cost
        return None

    @staticmethod
    def _quote_market_buy_qty(market: Market, quote_qty: Decimal) -> Decimal:
        """Base quantity `quote_qty` buys from the asks now, on the LOT_SIZE grid."""
        spec = market.spec
        left, qty, price = quote_qty, ZERO, None
        for level in market.book.asks:
            take = min(level.qty, spec.round_qty_down(left / level.price))
            qty += take
            left -= level.price * take  # exact, not floored: the fills can then never cost more
            if take < level.qty:
                return qty
            price = level.price
        if price is None:
            return qty
        # the book ran out before the budget: ask for what the rest buys at the last price, so the
        # order takes everything there is and then expires, as a market order short of liquidity does
        return qty + spec.round_qty_down(left / price)

    @staticmethod
    def _quote_market_sell_qty(market: Market, quote_qty: Decimal) -> Decimal:
        """Base quantity a quoteOrderQty sell needs to receive `quote_qty`, on the LOT_SIZE grid."""
        need, qty = quote_qty, ZERO
        for level in market.book.bids:
            level_quote = level.price * level.qty
            if level_quote >= need:
                qty += need / level.price
                need = ZERO
                break
            qty += level.qty
            need -= level_quote
        return market.spec.round_qty_down(qty)

    @staticmethod
    def _can_fill(market: Market, order: Order) -> bool:
        need = order.remaining
        side = market.book.side(not order.is_buy)
        for level in side:
            if not side.crosses(level.price, order.price):
                break
            need -= level.qty
            if need <= 0:
                return True
        return False

    # -- cancel and query ---------------------------------------------------------------------------

    def find_order(
        self, account_name: str, symbol: str, order_id: int | None, client_order_id: str | None
    ) -> Order | None:
        account = self.accounts[account_name]
        self.market(symbol)
        order = None
        if order_id is not None:
            order = account.orders.get((symbol, order_id))
            if order is not None and client_order_id is not None and order.client_order_id != client_order_id:
                return None
        elif client_order_id is not None:
            order = account.by_client_id.get((symbol, client_order_id))
        return order

    def cancel_order(
        self,
        account_name: str,
        symbol: str,
        *,
        now: int,
        order_id: int | None = None,
        orig_client_order_id: str | None = None,
        new_client_order_id: str | None = None,
    ) -> Order:
        order = self.find_order(account_name, symbol, order_id, orig_client_order_id)
        if order is None or not order.is_open:
            raise errors.cancel_rejected(errors.UNKNOWN_ORDER)
        self._cancel(order, now)
        order.orig_client_order_id = order.client_order_id
        order.cancel_client_order_id = new_client_order_id or self.new_client_order_id()
        return order

    def _cancel(self, order: Order, now: int) -> None:
        market = self.markets[order.symbol]
        if order in market.stops:
            market.stops.remove(order)
        else:
            market.book.remove(order)
        order.status = "CANCELED"
        order.update_time = now
        order.account.update_time = now
        self._finish(order, now)
        self._emit(OrderEvent(order, "CANCELED", None, now))

    def cancel_all(self, account_name: str, symbol: str, now: int) -> list[Order]:
        account = self.accounts[account_name]
        self.market(symbol)
        orders = sorted(account.open_orders(symbol), key=lambda o: o.order_id)
        for order in orders:
            self._cancel(order, now)
            order.orig_client_order_id = order.client_order_id
            order.cancel_client_order_id = self.new_client_order_id()
        return orders

    def _emit(self, event: OrderEvent) -> None:
        for listener in self.listeners:
            listener(event)
