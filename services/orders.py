"""Signed reads and cancels for the worker: orders, trades, account, holdings (placing lives in placement.py)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from binance_client import endpoints
from binance_client.budget import CANCEL, READ
from binance_client.errors import NotFoundError, UnknownOutcomeError

from .risk import RiskStore
from .signed import SignedCaller

TRADES_PAGE = 1000  # Binance's largest myTrades page
MAX_TRADE_PAGES = 10  # per symbol and request: 10,000 trades, weight 200
KILL_SWITCH_PASSES = 3  # listings of open orders while canceling everything


@dataclass
class Orders:
    signed: SignedCaller
    risk: RiskStore

    def get(
        self,
        symbol: str,
        order_id: int | None,
        client_order_id: str | None,
        *,
        priority: str = READ,
        deadline_ms: int | None = None,
    ) -> dict:
        return self.signed.call(
            endpoints.get_order(symbol, order_id=order_id, orig_client_order_id=client_order_id), priority, deadline_ms
        )

    def cancel(
        self, symbol: str, order_id: int | None, client_order_id: str | None, deadline_ms: int | None = None
    ) -> dict:
        """Cancel an open order. Idempotent: when the answer was lost (or a retry finds the order
        already gone), the order's current state decides — CANCELED is success. Cancels draw on the
        whole weight budget (budget.CANCEL); nothing is started after `deadline_ms`."""
        try:
            order = self.signed.call(
                endpoints.cancel_order(symbol, order_id=order_id, orig_client_order_id=client_order_id),
                CANCEL,
                deadline_ms,
            )
        except (UnknownOutcomeError, NotFoundError) as first:
            try:
                order = self.get(symbol, order_id, client_order_id, priority=CANCEL, deadline_ms=deadline_ms)
            except (NotFoundError, UnknownOutcomeError):
                raise first from None
            if order.get("status") != "CANCELED":
                raise first from None
        self.risk.note_order(order)
        return order

    def cancel_all(self, symbol: str, deadline_ms: int | None = None) -> list[dict]:
        try:
            orders = self.signed.call(endpoints.cancel_open_orders(symbol), CANCEL, deadline_ms)
        except NotFoundError:
            return []  # nothing was open
        for order in orders:
            self.risk.note_order(order)
        return orders

    def cancel_everything(self) -> list[dict]:
        """Cancel every open order on every symbol (the kill switch); returns the orders canceled.

        Lists open orders again after canceling until none is left (at most KILL_SWITCH_PASSES
        listings): an order a worker was already sending when the switch was engaged is caught by the
        next pass.
        """
        canceled: list[dict] = []
        for _ in range(KILL_SWITCH_PASSES):
            open_orders = self.open(None, priority=CANCEL)
            if not open_orders:
                break
            for symbol in sorted({o["symbol"] for o in open_orders}):
                for item in self.cancel_all(symbol):
                    # an OCO comes back as an order list carrying its orders' reports
                    canceled.extend(item["orderReports"] if "orderReports" in item else [item])
        return canceled

    def open(self, symbol: str | None, *, priority: str = READ, deadline_ms: int | None = None) -> list[dict]:
        return self.signed.call(endpoints.open_orders(symbol), priority, deadline_ms)

    def all(
        self,
        symbol: str,
        order_id: int | None,
        start: int | None,
        end: int | None,
        limit: int,
        deadline_ms: int | None = None,
    ) -> list[dict]:
        return self.signed.call(
            endpoints.all_orders(symbol, order_id=order_id, start_time=start, end_time=end, limit=limit),
            deadline_ms=deadline_ms,
        )

    def trades(
        self,
        symbol: str,
        order_id: int | None,
        start: int | None,
        end: int | None,
        from_id: int | None,
        limit: int,
        deadline_ms: int | None = None,
    ) -> list[dict]:
        return self.signed.call(
            endpoints.my_trades(
                symbol, order_id=order_id, start_time=start, end_time=end, from_id=from_id, limit=limit
            ),
            deadline_ms=deadline_ms,
        )

    def account(self, deadline_ms: int | None = None) -> dict:
        return self.signed.call(endpoints.account(omit_zero_balances=True), deadline_ms=deadline_ms)

    def trade_history(self, symbol: str, deadline_ms: int | None = None) -> tuple[list[dict], bool]:
        """Every trade on `symbol` from the first one, oldest first (paging with fromId), and whether
        the history is complete (False when MAX_TRADE_PAGES ran out first)."""
        rows: list[dict] = []
        from_id = 0
        for _ in range(MAX_TRADE_PAGES):
            page = self.trades(symbol, None, None, None, from_id, TRADES_PAGE, deadline_ms)
            rows.extend(page)
            if len(page) < TRADES_PAGE:
                return rows, True
            from_id = max(t["id"] for t in page) + 1
        return rows, False

    def holdings(self, symbols: dict[str, str], deadline_ms: int | None = None) -> dict:
        """What positions are computed from, read in one go: balances and the full trade history of
        each `symbols[asset]` for the assets held, plus the symbols this gateway placed orders on.

        `symbols` maps an asset to its symbol against the valuation quote (BTC → BTCUSDT).
        """
        account = self.account(deadline_ms)
        balances = [b for b in account.get("balances", []) if Decimal(b["free"]) + Decimal(b["locked"]) > 0]
        wanted = {symbols[b["asset"]] for b in balances if b["asset"] in symbols}
        wanted |= set(symbols.values()) & self.risk.traded_symbols()
        trades, incomplete = {}, []
        for symbol in sorted(wanted):
            trades[symbol], complete = self.trade_history(symbol, deadline_ms)
            if not complete:
                incomplete.append(symbol)
        return {
            "balances": balances,
            "trades": trades,
            "incompleteHistory": incomplete,
            "updateTime": account.get("updateTime"),
        }
