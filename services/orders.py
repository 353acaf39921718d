"""Order queries and cancels for the worker (placing lives in placement.py)."""

from __future__ import annotations

from dataclasses import dataclass

from binance_client import endpoints
from binance_client.errors import NotFoundError, UnknownOutcomeError

from .risk import RiskStore
from .signed import SignedCaller


@dataclass
class Orders:
    signed: SignedCaller
    risk: RiskStore

    def get(self, symbol: str, order_id: int | None, client_order_id: str | None) -> dict:
        return self.signed.call(endpoints.get_order(symbol, order_id=order_id, orig_client_order_id=client_order_id))

    def cancel(self, symbol: str, order_id: int | None, client_order_id: str | None) -> dict:
        """Cancel an open order. Idempotent: when the answer was lost (or a retry finds the order
        already gone), the order's current state decides — CANCELED is success."""
        try:
            order = self.signed.call(endpoints.cancel_order(symbol, order_id=order_id,
                                                            orig_client_order_id=client_order_id))
        except (UnknownOutcomeError, NotFoundError) as first:
            try:
                order = self.get(symbol, order_id, client_order_id)
            except NotFoundError:
                raise first from None
            if order.get("status") != "CANCELED":
                raise first from None
        self.risk.note_order(order)
        return order

    def cancel_all(self, symbol: str) -> list[dict]:
        try:
            orders = self.signed.call(endpoints.cancel_open_orders(symbol))
        except NotFoundError:
            return []  # nothing was open
        for order in orders:
            self.risk.note_order(order)
        return orders

    def open(self, symbol: str | None) -> list[dict]:
        return self.signed.call(endpoints.open_orders(symbol))

    def all(self, symbol: str, order_id: int | None, start: int | None, end: int | None, limit: int) -> list[dict]:
        return self.signed.call(endpoints.all_orders(symbol, order_id=order_id, start_time=start, end_time=end,
                                                     limit=limit))

    def trades(self, symbol: str, order_id: int | None, start: int | None, end: int | None, from_id: int | None,
               limit: int) -> list[dict]:
        return self.signed.call(endpoints.my_trades(symbol, order_id=order_id, start_time=start, end_time=end,
                                                    from_id=from_id, limit=limit))

    def account(self) -> dict:
        return self.signed.call(endpoints.account(omit_zero_balances=True))
