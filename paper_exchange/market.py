"""The living market: a seeded random-walk fair price per symbol, a market maker quoting both sides
around it, and a noise trader taking liquidity, all as ordinary accounts of the matching core.

Because the maker and the noise trader trade through the same engine as users, a user's resting
order fills when the price walks through it, and klines, trades and 24 h statistics all come from
real (simulated) trades. Deterministic for a seed and a sequence of `step(now)` calls.
"""

from __future__ import annotations

import math
import random
from decimal import Decimal

from . import errors
from .candles import MINUTE
from .engine import Exchange, Order
from .history import SyntheticPast
from .money import ZERO

MAKER = "paper-market-maker"
NOISE = "paper-noise-trader"
HUGE = Decimal("1000000000")  # the simulated counterparties never run out


class MarketSimulator:
    def __init__(
        self,
        exchange: Exchange,
        seed: int = 0,
        levels: int = 20,
        volatility: float = 0.0001,
        level_gap_bps: float = 2.0,
        spread_bps: float = 1.0,
        trade_probability: float = 0.5,
    ):
        self.exchange = exchange
        self.seed = seed
        self.rng = random.Random(seed)
        self.levels = levels
        self.volatility = volatility  # per-second standard deviation of log price
        self.level_gap_bps = level_gap_bps
        self.spread_bps = spread_bps
        self.trade_probability = trade_probability
        self.running = True
        assets = {a for m in exchange.markets.values() for a in (m.spec.base, m.spec.quote)}
        rich = {asset: HUGE for asset in sorted(assets)}
        # the counterparties pay no commission so their huge balances never leak into fees
        exchange.add_account(MAKER, rich, maker_rate=ZERO, taker_rate=ZERO, keep_history=False)
        exchange.add_account(NOISE, rich, maker_rate=ZERO, taker_rate=ZERO, keep_history=False)
        self.fair = {symbol: float(m.spec.start_price) for symbol, m in exchange.markets.items()}
        self.quotes: dict[str, dict[tuple[str, Decimal], Order]] = {symbol: {} for symbol in exchange.markets}
        self.last_step: int | None = None

    # -- history ------------------------------------------------------------------------------------

    def seed_history(self, now: int, minutes: int = 1440, trades_per_minute: int = 3) -> None:
        """Recorded trades for the last `minutes` (public history only: it predates every account,
        so no balance moves), after a synthetic past reaching back to each symbol's listing
        (history.py). The trades walk from where that past ends to today's price."""
        step_sd = self.volatility * math.sqrt(60 / trades_per_minute)
        horizon = now - now % MINUTE - minutes * MINUTE
        for symbol, market in self.exchange.markets.items():
            spec = market.spec
            past = SyntheticPast(
                symbol,
                self.seed,
                spec.listed,
                horizon,
                int(spec.start_price / spec.tick_size),
                tick=spec.tick_size,
                step=spec.step_size,
                quote_usd=65_000.0 if spec.quote == "BTC" else 1.0,
                min_ticks=int(spec.min_price / spec.tick_size),
                max_ticks=int(spec.max_price / spec.tick_size),
            )
            market.history.past = past
            walk, level = [], 0.0
            for _ in range(minutes * trades_per_minute):
                level += self.rng.gauss(0, step_sd)
                walk.append(level)
            end_level = walk[-1] if walk else 0.0
            fair = self.fair[symbol]
            begin = float(past.close_before(horizon) * spec.tick_size) if not past.empty else fair
            for i, level in enumerate(walk):
                t = (i + 1) / len(walk)  # a bridge: from the past's last close to today's fair price
                log_price = math.log(begin) * (1 - t) + math.log(fair) * t + level - end_level * t
                price = self._to_tick(spec, math.exp(log_price))
                minute, k = divmod(i, trades_per_minute)
                at = horizon + minute * MINUTE + (k * MINUTE) // trades_per_minute + self.rng.randrange(1000)
                qty = self._random_qty(spec, price, small=True)
                market.history.record(price, qty, price * qty, at, is_buyer_maker=self.rng.random() < 0.5)
        self.last_step = now

    # -- live ---------------------------------------------------------------------------------------

    def step(self, now: int) -> None:
        """Advance the market to `now`: move fair prices, re-quote, maybe trade."""
        dt = 0.25 if self.last_step is None else max(0.0, (now - self.last_step) / 1000)
        self.last_step = now
        if not self.running:
            return
        for symbol in self.exchange.markets:
            if dt:
                self.fair[symbol] *= math.exp(self.rng.gauss(0, self.volatility * math.sqrt(dt)))
            self.requote(symbol, now)
            if self.rng.random() < self.trade_probability * min(1.0, dt * 4):
                self._noise_trade(symbol, now)

    def set_price(self, symbol: str, price: Decimal, now: int) -> None:
        """Move the fair price (admin): the maker re-quotes at once, filling orders it crosses."""
        self.exchange.market(symbol)
        self.fair[symbol] = float(price)
        self.requote(symbol, now)

    def requote(self, symbol: str, now: int) -> None:
        market = self.exchange.markets[symbol]
        spec = market.spec
        fair = self.fair[symbol]
        gap = max(spec.tick_size, self._to_tick(spec, fair * self.level_gap_bps / 10_000))
        half_spread = fair * self.spread_bps / 20_000
        best_bid = (Decimal(repr(fair - half_spread)) // gap) * gap
        best_ask = best_bid + gap * (1 + int(Decimal(repr(2 * half_spread)) // gap))
        wanted = {("BUY", best_bid - i * gap) for i in range(self.levels) if best_bid - i * gap >= spec.min_price}
        wanted |= {("SELL", best_ask + i * gap) for i in range(self.levels)}
        quotes = self.quotes[symbol]
        for key, order in list(quotes.items()):
            if key not in wanted or not order.is_open:
                if order.is_open:
                    self.exchange.cancel_order(MAKER, symbol, now=now, order_id=order.order_id)
                del quotes[key]
        # refresh a few resting sizes so the book keeps moving even when the price does not
        for key in self.rng.sample(sorted(quotes), k=min(2, len(quotes))):
            self.exchange.cancel_order(MAKER, symbol, now=now, order_id=quotes.pop(key).order_id)
        for side, price in sorted(wanted - set(quotes), key=lambda k: (k[0], k[1] if k[0] == "SELL" else -k[1])):
            try:
                order = self.exchange.place_order(
                    MAKER,
                    symbol,
                    side,
                    "LIMIT",
                    now=now,
                    price=price,
                    time_in_force="GTC",
                    quantity=self._random_qty(spec, price),
                )
            except errors.BinanceError:
                continue  # a level outside the symbol's filters is simply not quoted
            if order.is_open:
                quotes[(side, price)] = order

    def _noise_trade(self, symbol: str, now: int) -> None:
        spec = self.exchange.markets[symbol].spec
        side = "BUY" if self.rng.random() < 0.5 else "SELL"
        qty = self._random_qty(spec, Decimal(repr(self.fair[symbol])), small=True)
        try:
            self.exchange.place_order(NOISE, symbol, side, "MARKET", now=now, quantity=qty)
        except errors.BinanceError:
            pass  # e.g. under MIN_NOTIONAL after rounding: the noise trader just skips a beat

    # -- sizes and prices ---------------------------------------------------------------------------

    @staticmethod
    def _to_tick(spec, price: float) -> Decimal:
        value = (Decimal(repr(price)) // spec.tick_size) * spec.tick_size
        return max(value, spec.tick_size)

    def _random_qty(self, spec, price: Decimal, small: bool = False) -> Decimal:
        """A size worth a few hundred (small) or a few thousand quote units, on the step grid."""
        notional = self.rng.uniform(20, 200) if small else self.rng.uniform(500, 5000)
        if spec.quote == "BTC":
            notional /= 65000
        qty = Decimal(repr(notional)) / Decimal(price)
        return max(spec.round_qty_down(qty), spec.min_qty * 10)
