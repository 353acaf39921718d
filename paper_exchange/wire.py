"""Core objects rendered in Binance's JSON shapes (field names, order and string decimals as Binance's)."""

from __future__ import annotations

from .candles import AggTrade, Candle, MarketHistory, PublicTrade
from .engine import Account, AccountTrade, Exchange, Fill, Market, Order
from .money import ZERO, fmt


def order_ack(order: Order, transact_time: int) -> dict:
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "transactTime": transact_time,
    }


def _state(order: Order) -> dict:
    """The fields a RESULT answer and a cancel's answer share, in Binance's order."""
    return {
        "price": fmt(order.price),
        "origQty": fmt(order.orig_qty),
        "executedQty": fmt(order.executed_qty),
        "origQuoteOrderQty": fmt(order.orig_quote_qty),
        "cummulativeQuoteQty": fmt(order.cum_quote),
        "status": order.status,
        "timeInForce": order.time_in_force or "GTC",
        "type": order.type,
        "side": order.side,
    }


def order_result(order: Order, transact_time: int) -> dict:
    body = order_ack(order, transact_time)
    body.update(_state(order))
    if order.stop_price:
        body["stopPrice"] = fmt(order.stop_price)
    body["workingTime"] = order.working_time
    body["selfTradePreventionMode"] = "NONE"
    if order.expiry_reason is not None:  # RESULT and FULL answers only (since 2026-03-26)
        body["expiryReason"] = order.expiry_reason
    return body


def fill(f: Fill) -> dict:
    return {
        "price": fmt(f.price),
        "qty": fmt(f.qty),
        "commission": fmt(f.commission),
        "commissionAsset": f.commission_asset,
        "tradeId": f.trade_id,
    }


def order_full(order: Order, transact_time: int) -> dict:
    body = order_result(order, transact_time)
    body["fills"] = [fill(f) for f in order.fills]
    return body


def new_order(order: Order, resp_type: str, transact_time: int) -> dict:
    return {"ACK": order_ack, "RESULT": order_result, "FULL": order_full}[resp_type](order, transact_time)


def order_detail(order: Order) -> dict:
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "price": fmt(order.price),
        "origQty": fmt(order.orig_qty),
        "executedQty": fmt(order.executed_qty),
        "cummulativeQuoteQty": fmt(order.cum_quote),
        "status": order.status,
        "timeInForce": order.time_in_force or "GTC",
        "type": order.type,
        "side": order.side,
        "stopPrice": fmt(order.stop_price),
        "icebergQty": fmt(ZERO),
        "time": order.time,
        "updateTime": order.update_time,
        "isWorking": order.is_working,
        "workingTime": order.working_time,
        "origQuoteOrderQty": fmt(order.orig_quote_qty),
        "selfTradePreventionMode": "NONE",
        **({"expiryReason": order.expiry_reason} if order.expiry_reason is not None else {}),
    }


def canceled_order(order: Order, transact_time: int) -> dict:
    body = {
        "symbol": order.symbol,
        "origClientOrderId": order.orig_client_order_id or order.client_order_id,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.cancel_client_order_id or order.client_order_id,
        "transactTime": transact_time,
        **_state(order),
    }
    if order.stop_price:
        body["stopPrice"] = fmt(order.stop_price)
    body["selfTradePreventionMode"] = "NONE"
    return body


def account(acc: Account, uid: int, omit_zero: bool = False) -> dict:
    maker_bps = int(acc.maker_rate * 10_000)
    taker_bps = int(acc.taker_rate * 10_000)
    balances = [
        {"asset": asset, "free": fmt(bal.free), "locked": fmt(bal.locked)}
        for asset, bal in sorted(acc.balances.items())
        if not (omit_zero and bal.free == 0 and bal.locked == 0)
    ]
    return {
        "makerCommission": maker_bps,
        "takerCommission": taker_bps,
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": fmt(acc.maker_rate),
            "taker": fmt(acc.taker_rate),
            "buyer": fmt(ZERO),
            "seller": fmt(ZERO),
        },
        "canTrade": True,
        "canWithdraw": True,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": acc.update_time,
        "accountType": "SPOT",
        "balances": balances,
        "permissions": ["SPOT"],
        "uid": uid,
    }


def my_trade(t: AccountTrade) -> dict:
    return {
        "symbol": t.symbol,
        "id": t.id,
        "orderId": t.order_id,
        "orderListId": -1,
        "price": fmt(t.price),
        "qty": fmt(t.qty),
        "quoteQty": fmt(t.quote_qty),
        "commission": fmt(t.commission),
        "commissionAsset": t.commission_asset,
        "time": t.time,
        "isBuyer": t.is_buyer,
        "isMaker": t.is_maker,
        "isBestMatch": True,
    }


def public_trade(t: PublicTrade) -> dict:
    return {
        "id": t.id,
        "price": fmt(t.price),
        "qty": fmt(t.qty),
        "quoteQty": fmt(t.quote_qty),
        "time": t.time,
        "isBuyerMaker": t.is_buyer_maker,
        "isBestMatch": True,
    }


def agg_trade(t: AggTrade) -> dict:
    return {
        "a": t.id,
        "p": fmt(t.price),
        "q": fmt(t.qty),
        "f": t.first_id,
        "l": t.last_id,
        "T": t.time,
        "m": t.is_buyer_maker,
        "M": True,
    }


def kline(c: Candle, close_time: int) -> list:
    return [
        c.open_time,
        fmt(c.open),
        fmt(c.high),
        fmt(c.low),
        fmt(c.close),
        fmt(c.volume),
        close_time,
        fmt(c.quote_volume),
        c.count,
        fmt(c.taker_buy_volume),
        fmt(c.taker_buy_quote),
        "0",
    ]


def depth(market: Market, limit: int) -> dict:
    book = market.book.depth(limit)
    return {
        "lastUpdateId": book["lastUpdateId"],
        "bids": [[fmt(p), fmt(q)] for p, q in book["bids"]],
        "asks": [[fmt(p), fmt(q)] for p, q in book["asks"]],
    }


def price_ticker(market: Market) -> dict:
    return {"symbol": market.spec.symbol, "price": fmt(market.last_price)}


def book_ticker(market: Market) -> dict:
    bid, ask = market.book.best_bid(), market.book.best_ask()
    return {
        "symbol": market.spec.symbol,
        "bidPrice": fmt(bid.price if bid else ZERO),
        "bidQty": fmt(bid.qty if bid else ZERO),
        "askPrice": fmt(ask.price if ask else ZERO),
        "askQty": fmt(ask.qty if ask else ZERO),
    }


DAY = 86_400_000


def ticker_24hr(market: Market, now: int, full: bool = True) -> dict:
    history: MarketHistory = market.history
    window = history.window(now - DAY, now)
    last = history.last
    last_price = market.last_price
    open_price = window.open if window else last_price
    volume = window.volume if window else ZERO
    quote_volume = window.quote_volume if window else ZERO
    body = {
        "symbol": market.spec.symbol,
        "openPrice": fmt(open_price),
        "highPrice": fmt(window.high if window else last_price),
        "lowPrice": fmt(window.low if window else last_price),
        "lastPrice": fmt(last_price),
        "volume": fmt(volume),
        "quoteVolume": fmt(quote_volume),
        "openTime": now - DAY,
        "closeTime": now,
        "firstId": window.first_id if window else -1,
        "lastId": window.last_id if window else -1,
        "count": window.count if window else 0,
    }
    if not full:
        return body
    change = last_price - open_price
    percent = (change / open_price * 100) if open_price else ZERO
    weighted = (quote_volume / volume) if volume else ZERO
    prev_close = history.close_before(now - DAY) or open_price
    bid, ask = market.book.best_bid(), market.book.best_ask()
    return {
        "symbol": body["symbol"],
        "priceChange": fmt(change),
        "priceChangePercent": fmt(percent, 3),
        "weightedAvgPrice": fmt(weighted),
        "prevClosePrice": fmt(prev_close),
        "lastPrice": body["lastPrice"],
        "lastQty": fmt(last.qty if last else ZERO),
        "bidPrice": fmt(bid.price if bid else ZERO),
        "bidQty": fmt(bid.qty if bid else ZERO),
        "askPrice": fmt(ask.price if ask else ZERO),
        "askQty": fmt(ask.qty if ask else ZERO),
        "openPrice": body["openPrice"],
        "highPrice": body["highPrice"],
        "lowPrice": body["lowPrice"],
        "volume": body["volume"],
        "quoteVolume": body["quoteVolume"],
        "openTime": body["openTime"],
        "closeTime": body["closeTime"],
        "firstId": body["firstId"],
        "lastId": body["lastId"],
        "count": body["count"],
    }


def avg_price(market: Market, exchange: Exchange, now: int) -> dict:
    last = market.history.last
    price = market.history.average_price(now) or market.last_price
    return {"mins": 5, "price": fmt(price), "closeTime": last.time if last else now}


def exchange_info(exchange: Exchange, markets: list[Market], rate_limits: list[dict], now: int) -> dict:
    return {
        "timezone": "UTC",
        "serverTime": now,
        "rateLimits": rate_limits,
        "exchangeFilters": [],
        "symbols": [m.spec.exchange_info() for m in markets],
        "sors": [],
    }
