"""Positions (viewer): each asset held or traded, valued in USDT, with average entry and P&L.

One worker task reads the balances and the full trade histories (signed calls stay in workers, and
the web process waits for one reply instead of one per symbol); marks come from the market-data
cache; services.positions does the arithmetic. The report is account-wide (the same for every token),
so each web process keeps it for POSITIONS_CACHE_TTL seconds and concurrent requests share one
read: the trade histories cost 20 weight a page, and a dashboard polling them must not spend the
budget every other client shares. A read that does reach the worker is charged to its client.
"""

from __future__ import annotations

from decimal import Decimal

from sanic import Blueprint, Request

from binance_client import endpoints
from services import positions as core
from services.contract.tasks import TaskName
from services.orders import TRADES_PAGE as core_page

from . import schemas as S
from .envelope import ok
from .openapi import operation

QUOTE = "USDT"  # positions are valued against <ASSET>USDT

bp = Blueprint("positions", url_prefix="/api/v1")  # viewer


@bp.get("/positions")
@operation(
    "Positions per asset: quantity, average entry, mark, unrealized and realized P&L, return %",
    tag="account",
    data=S.POSITIONS,
    errors=(429, 503, 504),
)
async def get_positions(request: Request):
    ctx = request.app.ctx
    return ok(
        request, await ctx.positions_cache.get("positions", ctx.settings.positions_cache_ttl, lambda: positions(ctx))
    )


async def positions(ctx) -> dict:
    symbols = {
        s["baseAsset"]: s["symbol"] for s in (await ctx.market.symbols_by_name()).values() if s["quoteAsset"] == QUOTE
    }
    # charged up front: the account and one page of trades; the pages read beyond that afterwards
    page = endpoints.my_trades(QUOTE).weight
    held = await ctx.dispatch.call(TaskName.HOLDINGS, symbols, weight=endpoints.account().weight + page)
    pages = sum(len(rows) // core_page + 1 for rows in held["trades"].values())
    if pages > 1:
        await ctx.quotas.charge_current(page * (pages - 1), overdraft=True)
    balances = {b["asset"]: Decimal(b["free"]) + Decimal(b["locked"]) for b in held["balances"]}
    wanted = sorted(set(held["trades"]) | {symbols[a] for a in balances if a in symbols})
    tickers = await ctx.market.ticker_price(None, wanted) if wanted else []
    marks = {t["symbol"]: Decimal(t["price"]) for t in tickers}
    report = core.render(core.positions(balances, held["trades"], symbols, marks, QUOTE))
    return {**report, "incompleteHistory": held["incompleteHistory"]}
