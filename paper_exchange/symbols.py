"""Listed symbols, their trading rules (Binance filters) and how exchangeInfo renders them."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from . import errors
from .money import D, fmt

ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
MAX_NUM_ORDERS = 200
MAX_NUM_ALGO_ORDERS = 5


@dataclass(frozen=True)
class SymbolSpec:
    """One symbol's rules; the numbers mirror Binance's live listings at roughly today's prices."""

    symbol: str
    base: str
    quote: str
    start_price: Decimal
    tick_size: Decimal
    min_price: Decimal
    max_price: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    max_notional: Decimal
    status: str = "TRADING"
    order_types: tuple[str, ...] = field(default=ORDER_TYPES)
    listed: int = 0  # ms, a UTC midnight: where the symbol's kline history begins

    # -- filters, in the order Binance evaluates them ------------------------------------------

    def check_price(self, price: Decimal) -> None:
        if price < self.min_price or price > self.max_price or (price - self.min_price) % self.tick_size != 0:
            raise errors.filter_failure("PRICE_FILTER")

    def check_lot(self, qty: Decimal, market: bool) -> None:
        if market:
            min_qty, max_qty, step, name = self.min_qty, self.market_max_qty, self.step_size, "MARKET_LOT_SIZE"
            if qty < min_qty or qty > max_qty or (qty - min_qty) % step != 0:
                raise errors.filter_failure(name)
        if qty < self.min_qty or qty > self.max_qty or (qty - self.min_qty) % self.step_size != 0:
            raise errors.filter_failure("LOT_SIZE")

    def check_notional(self, notional: Decimal, market: bool = False) -> None:
        # MIN_NOTIONAL is the older filter Binance still lists on some symbols; NOTIONAL adds a cap,
        # which our listing (like Binance's) does not apply to market orders (applyMaxToMarket).
        if notional < self.min_notional:
            raise errors.filter_failure("MIN_NOTIONAL")
        if notional > self.max_notional and not market:
            raise errors.filter_failure("NOTIONAL")

    def round_qty_down(self, qty: Decimal) -> Decimal:
        """Largest quantity on the step grid that is not above `qty` (quoteOrderQty markets)."""
        steps = ((qty - self.min_qty) // self.step_size) if qty >= self.min_qty else Decimal(-1)
        return self.min_qty + steps * self.step_size if steps >= 0 else Decimal(0)

    # -- rendering --------------------------------------------------------------------------------

    def filters(self) -> list[dict]:
        return [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt(self.min_price),
                "maxPrice": fmt(self.max_price),
                "tickSize": fmt(self.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": fmt(self.min_qty),
                "maxQty": fmt(self.max_qty),
                "stepSize": fmt(self.step_size),
            },
            {
                "filterType": "MIN_NOTIONAL",
                "minNotional": fmt(self.min_notional),
                "applyToMarket": True,
                "avgPriceMins": 5,
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": fmt(self.min_qty),
                "maxQty": fmt(self.market_max_qty),
                "stepSize": fmt(self.step_size),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": fmt(self.min_notional),
                "applyMinToMarket": True,
                "maxNotional": fmt(self.max_notional),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": MAX_NUM_ORDERS},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": MAX_NUM_ALGO_ORDERS},
        ]

    def exchange_info(self) -> dict:
        return {
            "symbol": self.symbol,
            "status": self.status,
            "baseAsset": self.base,
            "baseAssetPrecision": 8,
            "quoteAsset": self.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": list(self.order_types),
            "icebergAllowed": False,
            "ocoAllowed": False,
            "otoAllowed": False,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": False,
            "amendAllowed": False,
            "pegInstructionsAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": self.filters(),
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "NONE",
            "allowedSelfTradePreventionModes": ["NONE"],
        }


def _spec(symbol, base, quote, price, tick, step, min_notional, listed, max_qty="9000", market_max="100") -> SymbolSpec:
    tick, step = D(tick), D(step)
    return SymbolSpec(
        symbol=symbol,
        base=base,
        quote=quote,
        start_price=D(price),
        tick_size=tick,
        min_price=tick,
        max_price=D("1000000"),
        step_size=step,
        min_qty=step,
        max_qty=D(max_qty),
        market_max_qty=D(market_max),
        min_notional=D(min_notional),
        max_notional=D("9000000"),
        listed=listed,
    )


# Listing dates as on Binance (klines page back to them). The fifth symbol has a UTF-8 name, as
# Binance allows since 2025-12 (CHANGELOG 2025-12-02/15; the testnet lists 这是测试币456): REST and
# WebSocket API answers carry it as it is, in UTF-8; stream names lower its ASCII letters only
# (币安人生usdt@trade); a signed request percent-encodes it before signing.
UNICODE_SYMBOL = "币安人生USDT"
DEFAULT_SYMBOLS: tuple[SymbolSpec, ...] = (
    _spec("BTCUSDT", "BTC", "USDT", "65000.00", "0.01", "0.00001", "5", listed=1502928000000),
    _spec("ETHUSDT", "ETH", "USDT", "3200.00", "0.01", "0.0001", "5", listed=1502928000000),
    _spec("BNBUSDT", "BNB", "USDT", "600.00", "0.01", "0.001", "5", listed=1509926400000),
    _spec("ETHBTC", "ETH", "BTC", "0.04900", "0.00001", "0.001", "0.0001", listed=1499990400000, market_max="1000"),
    _spec(
        UNICODE_SYMBOL,
        "币安人生",
        "USDT",
        "0.1500",
        "0.0001",
        "1",
        "5",
        listed=1765843200000,
        max_qty="90000000",
        market_max="9000000",
    ),
)
