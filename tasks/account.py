"""Signed reads (queue `default`): account, orders, trades — answered to the waiting web request.

`deadline` (epoch ms, keyword) is when the requester stops waiting: nothing is started after it.
"""

from __future__ import annotations

from services.contract.tasks import TaskName
from workers.celery_app import app
from workers.resources import resources

from .base import SpotgateTask
from .replies import answer


@app.task(name=TaskName.ACCOUNT, base=SpotgateTask)
def get_account(reply_to: str, deadline: int | None = None) -> None:
    answer(reply_to, lambda: resources().orders.account(deadline), deadline, TaskName.ACCOUNT)


@app.task(name=TaskName.ORDER, base=SpotgateTask)
def get_order(
    reply_to: str,
    symbol: str,
    order_id: int | None = None,
    client_order_id: str | None = None,
    deadline: int | None = None,
) -> None:
    answer(
        reply_to,
        lambda: resources().orders.get(symbol, order_id, client_order_id, deadline_ms=deadline),
        deadline,
        TaskName.ORDER,
    )


@app.task(name=TaskName.OPEN_ORDERS, base=SpotgateTask)
def open_orders(reply_to: str, symbol: str | None = None, deadline: int | None = None) -> None:
    answer(reply_to, lambda: resources().orders.open(symbol, deadline_ms=deadline), deadline, TaskName.OPEN_ORDERS)


@app.task(name=TaskName.ALL_ORDERS, base=SpotgateTask)
def all_orders(
    reply_to: str,
    symbol: str,
    order_id: int | None = None,
    start: int | None = None,
    end: int | None = None,
    limit: int = 500,
    deadline: int | None = None,
) -> None:
    answer(
        reply_to,
        lambda: resources().orders.all(symbol, order_id, start, end, limit, deadline),
        deadline,
        TaskName.ALL_ORDERS,
    )


@app.task(name=TaskName.TRADES, base=SpotgateTask)
def my_trades(
    reply_to: str,
    symbol: str,
    order_id: int | None = None,
    start: int | None = None,
    end: int | None = None,
    from_id: int | None = None,
    limit: int = 500,
    deadline: int | None = None,
) -> None:
    answer(
        reply_to,
        lambda: resources().orders.trades(symbol, order_id, start, end, from_id, limit, deadline),
        deadline,
        TaskName.TRADES,
    )


@app.task(name=TaskName.HOLDINGS, base=SpotgateTask)
def holdings(reply_to: str, symbols: dict[str, str], deadline: int | None = None) -> None:
    """Balances and full trade histories for positions, in one task (one round trip for the web)."""
    answer(reply_to, lambda: resources().orders.holdings(symbols, deadline), deadline, TaskName.HOLDINGS)
