"""Positions from balances, trade history and mark prices: average-cost entry and P&L (pure, Decimal only).

Per asset, trades on `<ASSET><QUOTE>` are replayed oldest first with the average-cost method:

- a buy adds the quantity received (less a commission paid in the asset) at its cost (plus a
  commission paid in the quote asset); the average entry price is cost / quantity;
- a sell gives up the quantity sold (plus a commission paid in the asset) at the average cost and
  realizes proceeds (less a commission paid in the quote asset) minus that cost.

Commissions paid in a third asset (BNB) are not priced into the cost: their price at the time is
unknown here. Quantity the trades do not explain (opening balances, deposits, trades on other quote
assets) is *untracked*: it counts in the notional at the mark but carries no P&L, and sells beyond
the tracked quantity realize nothing for the excess. Return % is (realized + unrealized) over the
cost of everything bought.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

ZERO = Decimal(0)
HUNDRED = Decimal(100)
AMOUNT = Decimal("0.00000001")
PERCENT = Decimal("0.01")


@dataclass
class Book:
    """The tracked part of one asset's position while trades are replayed."""

    quantity: Decimal = ZERO  # held with a known cost
    cost: Decimal = ZERO  # what that quantity cost, in the quote asset
    realized: Decimal = ZERO
    invested: Decimal = ZERO  # cost of everything bought
    trades: int = 0

    def buy(self, received: Decimal, paid: Decimal) -> None:
        self.quantity += received
        self.cost += paid
        self.invested += paid

    def sell(self, given: Decimal, proceeds: Decimal) -> None:
        covered = min(given, self.quantity)
        if covered <= 0 or given <= 0:
            return
        cost_out = self.cost if covered == self.quantity else self.cost * covered / self.quantity
        self.realized += (proceeds if covered == given else proceeds * covered / given) - cost_out
        self.quantity -= covered
        self.cost -= cost_out

    @property
    def average(self) -> Decimal | None:
        return self.cost / self.quantity if self.quantity > 0 else None


def replay(trades: Iterable[Mapping], base: str, quote: str) -> Book:
    """Binance `myTrades` rows of one symbol (any order) → the tracked book."""
    book = Book()
    for t in sorted(trades, key=lambda t: (t["time"], t["id"])):
        qty, price = Decimal(t["qty"]), Decimal(t["price"])
        commission, fee_asset = Decimal(t.get("commission") or 0), t.get("commissionAsset")
        in_base = commission if fee_asset == base else ZERO
        in_quote = commission if fee_asset == quote else ZERO
        if t["isBuyer"]:
            book.buy(qty - in_base, qty * price + in_quote)
        else:
            book.sell(qty + in_base, qty * price - in_quote)
        book.trades += 1
    return book


def position(asset: str, symbol: str, quantity: Decimal, trades: Iterable[Mapping], quote: str, mark: Decimal) -> dict:
    """One asset's position, in Decimals (see `render` for the wire form)."""
    book = replay(trades, asset, quote)
    tracked = min(book.quantity, max(quantity, ZERO))  # a withdrawal can leave less than the trades explain
    if tracked == book.quantity:
        cost_basis = book.cost
    else:
        cost_basis = book.cost * tracked / book.quantity if book.quantity else ZERO
    unrealized = tracked * mark - cost_basis
    return {
        "asset": asset,
        "symbol": symbol,
        "quantity": quantity,
        "untrackedQuantity": quantity - tracked,
        "averageEntryPrice": book.average,
        "costBasis": cost_basis,
        "markPrice": mark,
        "notional": quantity * mark,
        "unrealizedPnl": unrealized,
        "realizedPnl": book.realized,
        "invested": book.invested,
        "returnPct": _percent(book.realized + unrealized, book.invested),
        "trades": book.trades,
    }


def positions(
    balances: Mapping[str, Decimal],
    trades: Mapping[str, list],
    symbols: Mapping[str, str],
    marks: Mapping[str, Decimal],
    quote: str,
) -> dict:
    """Every asset held or traded against `quote`, and a summary.

    `balances`: asset → free + locked; `trades`: symbol → its myTrades rows; `symbols`: asset → its
    `<ASSET><QUOTE>` symbol; `marks`: symbol → current price. Assets without a symbol or a mark are
    listed in `unpriced`.
    """
    traded = {asset for asset, symbol in symbols.items() if trades.get(symbol)}
    held = {asset for asset, amount in balances.items() if amount > 0}
    rows, unpriced = [], []
    for asset in sorted((held | traded) - {quote}):
        symbol = symbols.get(asset)
        if symbol is None or symbol not in marks:
            unpriced.append(asset)
            continue
        rows.append(position(asset, symbol, balances.get(asset, ZERO), trades.get(symbol, []), quote, marks[symbol]))
    total = {
        name: sum((r[name] for r in rows), ZERO)
        for name in ("notional", "costBasis", "unrealizedPnl", "realizedPnl", "invested")
    }
    summary = {
        "quoteAsset": quote,
        "totalNotional": total["notional"],
        "totalCostBasis": total["costBasis"],
        "totalUnrealizedPnl": total["unrealizedPnl"],
        "totalRealizedPnl": total["realizedPnl"],
        "totalInvested": total["invested"],
        "totalReturnPct": _percent(total["realizedPnl"] + total["unrealizedPnl"], total["invested"]),
    }
    return {"positions": rows, "summary": summary, "unpriced": unpriced}


def render(report: dict) -> dict:
    """Decimals as strings, as Binance sends them: amounts to 8 places, percentages to 2."""
    return {
        "positions": [{k: _text(k, v) for k, v in row.items()} for row in report["positions"]],
        "summary": {k: _text(k, v) for k, v in report["summary"].items()},
        "unpriced": report["unpriced"],
    }


def _percent(gain: Decimal, base: Decimal) -> Decimal | None:
    return gain / base * HUNDRED if base > 0 else None


def _text(name: str, value):
    if not isinstance(value, Decimal):
        return value
    rounded = value.quantize(PERCENT if name.endswith("Pct") else AMOUNT, rounding=ROUND_HALF_EVEN)
    return f"{rounded if rounded else abs(rounded):f}"  # never "-0.00000000"
