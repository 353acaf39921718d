"""Positions (viewer): each asset held or traded, valued in USDT, with average entry and P&L.

One worker task reads the balances and the full trade histories (signed calls stay in workers, and
the web process waits for one reply instead of one per symbol); marks come from the market-data
cache; services.positions does the arithmetic.
"""

from __future__ import annotations

from decimal import Decimal

from sanic import Blueprint, Request

from services import positions as core

from . import schemas as S
from .envelope import ok
from .openapi import operation

QUOTE = "USDT"  # positions are valued against <ASSET>USDT

bp = Blueprint("positions", url_prefix="/api/v1")  # viewer


@bp.get("/positions")
@operation("Positions per asset: quantity, average entry, mark, unrealized and realized P&L, return %",
           tag="account", data=S.POSITIONS, errors=(429, 503, 504))
async def get_positions(request: Request):
    return ok(request, await positions(request.app.ctx))


async def positions(ctx) -> dict:
    symbols = {s["baseAsset"]: s["symbol"] for s in (await ctx.market.symbols_by_name()).values()
               if s["quoteAsset"] == QUOTE}
    held = await ctx.dispatch.call("account.holdings", symbols)
    balances = {b["asset"]: Decimal(b["free"]) + Decimal(b["locked"]) for b in held["balances"]}
    wanted = sorted(set(held["trades"]) | {symbols[a] for a in balances if a in symbols})
    tickers = await ctx.market.ticker_price(None, wanted) if wanted else []
    marks = {t["symbol"]: Decimal(t["price"]) for t in tickers}
    report = core.render(core.positions(balances, held["trades"], symbols, marks, QUOTE))
    return {**report, "incompleteHistory": held["incompleteHistory"]}
