"""What a user can observe of a matching core at one moment, and Binance's published error texts."""

from __future__ import annotations

import json
from pathlib import Path

from paper_exchange.engine import Exchange

ERRORS = json.loads((Path(__file__).resolve().parents[1] / "data" / "binance" / "errors.json").read_text())
FILTER_MESSAGES = {m["msg"] for m in ERRORS["messages_by_section"]["Filter failures"]}
ORDER_MESSAGES = {
    m["msg"]
    for section, messages in ERRORS["messages_by_section"].items()
    if section != "Filter failures"
    for m in messages
}


def binance_messages(code: int) -> set[str]:
    """The texts Binance documents for a matching-engine rejection code."""
    return FILTER_MESSAGES if code == -1013 else ORDER_MESSAGES


def snapshot(exchange: Exchange) -> dict:
    """Balances, orders, books, pending stops, fees and public trades: a rejected request must
    leave every one of them as it was."""
    return {
        "balances": {
            name: {asset: (b.free, b.locked) for asset, b in acc.balances.items() if b.free or b.locked}
            for name, acc in exchange.accounts.items()
        },
        "orders": {
            name: {key: (o.status, o.executed_qty, o.cum_quote, o.locked) for key, o in acc.orders.items()}
            for name, acc in exchange.accounts.items()
        },
        "open": {name: sorted(acc.open) for name, acc in exchange.accounts.items()},
        "books": {
            symbol: (
                [(lv.price, lv.qty, [o.order_id for o in lv.orders]) for lv in m.book.bids],
                [(lv.price, lv.qty, [o.order_id for o in lv.orders]) for lv in m.book.asks],
                m.book.update_id,
            )
            for symbol, m in exchange.markets.items()
        },
        "stops": {symbol: [o.order_id for o in m.stops] for symbol, m in exchange.markets.items()},
        "next_order_id": {symbol: m.next_order_id for symbol, m in exchange.markets.items()},
        "trades": {symbol: m.history.next_trade_id for symbol, m in exchange.markets.items()},
        "fees": {asset: fee for asset, fee in exchange.fees.items() if fee},
    }
