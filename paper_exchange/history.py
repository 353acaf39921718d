"""The synthetic past of a symbol: candles from its listing date up to where the recorded trades begin.

Nothing is stored up front but one close per day. Every candle is computed on demand, top down, as
a pure function of (seed, symbol, time): a day's candle comes from the daily path; `split` cuts a
candle into its children (a day into 24 hours, an hour into 60 minutes, a minute into 60 seconds) so
that they aggregate back to it exactly — first open, last close, highest high, lowest low, and the
sums of volume, quote volume, trade count and taker-buy volumes. Every other interval is an
aggregate of these (3m…30m of minutes, 2h…12h of hours, 3d/1w/1M of days), so all intervals agree
with each other by construction, and a candle costs a few splits, whatever its date.

Candles here are integers: prices in ticks, quantities in steps, quote volume in tick·step units, so
sums are exact; `to_candle` turns one into the Decimal `Candle` the REST and stream adapters render.

    Node            (open, high, low, close, trades, volume, quote, taker base, taker quote), integers
    split(...)      a node into k children that aggregate back to it
    SyntheticPast   one symbol's past: day nodes from a daily path, cached splits, `aggregate(a, b)`
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from decimal import Decimal
from typing import NamedTuple

from .candles import Candle

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
TRADES_PER_MINUTE = 3  # as the recorded history the simulator seeds (market.py)
DAILY_VOLATILITY = 0.03  # sd of a day's log return
MEAN_REVERSION = 0.995  # per day, towards the anchor: prices stay within a few times of it
TRADE_NOTIONAL = 110  # average trade size in USDT (the seeded trades' 20-200)
ATTEMPTS = 4  # deals of a split before one child takes the whole parent
SPLIT_CACHE = 64  # day and hour splits kept (a split holds 24 or 60 nodes)


class Node(NamedTuple):
    o: int
    h: int
    l: int  # noqa: E741 (OHLC)
    c: int
    n: int
    v: int
    q: int
    tv: int
    tq: int


def flat(price: int) -> Node:
    """A candle without trades: flat at the previous close, as Binance shows one."""
    return Node(price, price, price, price, 0, 0, 0, 0, 0)


def merge(nodes) -> Node | None:
    """The aggregate of consecutive nodes (None for none): trades decide open, high and low."""
    total = None
    for node in nodes:
        if total is None:
            total = node
        elif node.n == 0:
            total = total._replace(c=node.c) if total.n == 0 else total
        elif total.n == 0:
            total = node
        else:
            total = Node(
                total.o,
                max(total.h, node.h),
                min(total.l, node.l),
                node.c,
                total.n + node.n,
                total.v + node.v,
                total.q + node.q,
                total.tv + node.tv,
                total.tq + node.tq,
            )
    return total


def valid(node: Node) -> bool:
    """What every node satisfies (and `split` relies on): prices inside the range, a flat empty
    candle, at least one step a trade, trades enough to touch open, high, low and close, and
    volume-weighted prices (all trades and taker buys) inside the range."""
    o, h, l, c, n, v, q, tv, tq = node  # noqa: E741  (a candle's open, high, low, close)
    if not (1 <= l <= min(o, c) and max(o, c) <= h):
        return False
    if n == 0:
        return o == h == l == c and v == q == tv == tq == 0
    touches = len({h, l} - {o, c})
    if n == 1 and not o == h == l == c or n == 2 and touches or touches > max(0, n - 2):
        return False
    return (
        v >= n
        and l * v <= q <= h * v
        and 0 <= tv <= v
        and l * tv <= tq <= h * tv
        and l * (v - tv) <= q - tq <= h * (v - tv)
    )


# -- splitting --------------------------------------------------------------------------------------


def apportion(total: int, weights: list[float]) -> list[int]:
    """Integers proportional to `weights` summing to `total` (largest remainder)."""
    mass = sum(weights)
    if total == 0 or mass <= 0:
        return [0] * len(weights) if mass > 0 or total == 0 else _even(total, len(weights))
    exact = [total * w / mass for w in weights]
    parts = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: parts[i] - exact[i])
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


def _even(total: int, k: int) -> list[int]:
    return [total // k + (1 if i < total % k else 0) for i in range(k)]


def _spread(delta: int, room: list[int]) -> list[int] | None:
    """Integers 0 <= x_i <= room_i summing to `delta` (>= 0), proportional to room; None if impossible."""
    if delta == 0:
        return [0] * len(room)
    capacity = sum(room)
    if capacity < delta:
        return None
    parts = [delta * r // capacity for r in room]
    left = delta - sum(parts)
    for i in sorted(range(len(room)), key=lambda i: parts[i] - room[i]):
        if left == 0:
            break
        extra = min(left, room[i] - parts[i])
        parts[i] += extra
        left -= extra
    return parts


def _fit(target: int, start: list[int], low: list[int], high: list[int]) -> list[int] | None:
    """Move `start` (inside [low, high]) to sum to `target`, within the bounds; None if impossible."""
    delta = target - sum(start)
    if delta >= 0:
        moves = _spread(delta, [hi - s for s, hi in zip(start, high, strict=True)])
        return None if moves is None else [s + m for s, m in zip(start, moves, strict=True)]
    moves = _spread(-delta, [s - lo for s, lo in zip(start, low, strict=True)])
    return None if moves is None else [s - m for s, m in zip(start, moves, strict=True)]


def _path(count: int, o: int, h: int, l: int, c: int, rng: random.Random) -> list[int]:  # noqa: E741
    """`count` prices from o to c that stay within [l, h] and touch both: a scaled Brownian bridge,
    with the interior point nearest each untouched extreme moved onto it."""
    if count == 1:
        return [o]
    walk = [0.0]
    for _ in range(count - 1):
        walk.append(walk[-1] + rng.gauss(0, 1))
    end = walk[-1]
    bridge = [w - end * j / (count - 1) for j, w in enumerate(walk)]
    spread = (max(bridge) - min(bridge)) or 1.0
    scale = (h - l) / spread * rng.uniform(0.5, 0.9)
    values = [min(h, max(l, round(o + (c - o) * j / (count - 1) + scale * b))) for j, b in enumerate(bridge)]
    values[0], values[-1] = o, c
    interior = range(1, count - 1)
    used = -1
    if h not in values:
        used = max(interior, key=lambda j: (values[j], -j))
        values[used] = h
    if l not in values:
        values[min((j for j in interior if j != used), key=lambda j: (values[j], j))] = l
    return values


def _allocate(
    volume: int,
    quote: int,
    mins: list[int],
    lows: list[int],
    highs: list[int],
    typical: list[float],
    weights: list[float],
) -> tuple[list[int], list[int]] | None:
    """Volumes v_i >= mins_i summing to `volume`, and quotes within [low_i * v_i, high_i * v_i]
    summing to `quote`; None if no such sharing exists.

    The spare volume is shared by `weights`, then blended with "all of it on the child trading
    highest (lowest)" just far enough that every child trading at its typical price makes up the
    quote: the quotes then only need small moves, and each child's average price stays well inside
    its range (its own children can still be made to fit it)."""
    extra = volume - sum(mins)
    if extra < 0:
        return None
    k = len(mins)
    chosen = [m + e for m, e in zip(mins, apportion(extra, weights), strict=True)]
    at_typical = sum(v * t for v, t in zip(chosen, typical, strict=True))
    if extra and at_typical != quote:
        rising = quote > at_typical
        target = (
            max(range(k), key=lambda i: (typical[i], -i)) if rising else min(range(k), key=lambda i: (typical[i], i))
        )
        reach = sum(m * t for m, t in zip(mins, typical, strict=True)) + extra * typical[target]
        if (reach > at_typical) if rising else (reach < at_typical):
            alpha = min(1.0, (quote - at_typical) / (reach - at_typical))
            mass = sum(weights)
            blended = [(1 - alpha) * w / mass + (alpha if i == target else 0.0) for i, w in enumerate(weights)]
            chosen = [m + e for m, e in zip(mins, apportion(extra, blended), strict=True)]
    low = [p * v for p, v in zip(lows, chosen, strict=True)]
    high = [p * v for p, v in zip(highs, chosen, strict=True)]
    start = [min(h, max(lo, round(v * t))) for v, t, lo, h in zip(chosen, typical, low, high, strict=True)]
    quotes = _fit(quote, start, low, high)
    return None if quotes is None else (chosen, quotes)


def split(parent: Node, prev_close: int, k: int, rng: random.Random) -> list[Node]:
    """`parent` cut into `k` consecutive children that aggregate back to it exactly.

    Trades are dealt out first (children without any are flat at the close before them); then a
    price path through the active children's first, last and up to two inner trades touches the
    parent's open, high, low and close; the taker-buy and the other volume (and their quote volumes)
    are shared out within each child's price range. A deal whose volumes cannot fit those ranges is
    dealt again; after ATTEMPTS (rare) one child takes the whole parent, which is always valid."""
    if parent.n == 0:
        return [flat(parent.c)] * k
    for _ in range(ATTEMPTS):
        counts = apportion(parent.n, [rng.expovariate(1.0) for _ in range(k)])
        owners = [i for i in range(k) for _ in range(min(counts[i], 4))]
        values = _path(len(owners), parent.o, parent.h, parent.l, parent.c, rng)
        prices: dict[int, list[int]] = {}
        for owner, value in zip(owners, values, strict=True):
            prices.setdefault(owner, []).append(value)
        active = sorted(prices)
        shape = {i: (p[0], max(p), min(p), p[-1]) for i, p in prices.items()}
        lows, highs = [shape[i][2] for i in active], [shape[i][1] for i in active]
        typical = [sum(shape[i]) / 4 for i in active]
        weights = [counts[i] * rng.uniform(0.5, 1.5) for i in active]
        taker = _allocate(parent.tv, parent.tq, [0] * len(active), lows, highs, typical, weights)
        if taker is None:
            continue
        mins = [max(0, counts[i] - t) for i, t in zip(active, taker[0], strict=True)]
        maker = _allocate(parent.v - parent.tv, parent.q - parent.tq, mins, lows, highs, typical, weights)
        if maker is not None:
            break
    else:
        # Integer volumes at a handful of fixed prices cannot always make up the quote volume
        # exactly (a minute of three single-trade seconds); after ATTEMPTS deals, one child takes it all.
        busiest = max(range(k), key=lambda i: (counts[i], -i))
        return [flat(prev_close)] * busiest + [parent] + [flat(parent.c)] * (k - busiest - 1)
    children, close, j = [], prev_close, 0
    for i in range(k):
        if i not in shape:
            children.append(flat(close))
            continue
        o, h, l, c = shape[i]  # noqa: E741
        tv, tq, mv, mq = taker[0][j], taker[1][j], maker[0][j], maker[1][j]
        children.append(Node(o, h, l, c, counts[i], tv + mv, tq + mq, tv, tq))
        close, j = c, j + 1
    return children


# -- one symbol's past ------------------------------------------------------------------------------


class SyntheticPast:
    """Candles of one symbol from `listed_ms` (a UTC midnight) up to `horizon_ms` (a minute), where
    the recorded trades take over. The daily path ends at `anchor` (a price in ticks) on the day of
    the horizon, so the past meets today's market; it mean-reverts towards it further back.

    Memory: one int per day (a few thousand), plus the last SPLIT_CACHE day and hour splits."""

    def __init__(
        self,
        symbol: str,
        seed: int,
        listed_ms: int,
        horizon_ms: int,
        anchor: int,
        *,
        tick: Decimal,
        step: Decimal,
        quote_usd: float = 1.0,
        min_ticks: int = 1,
        max_ticks: int | None = None,
    ):
        self.symbol, self.seed = symbol, seed
        self.listed, self.horizon = listed_ms - listed_ms % DAY, horizon_ms - horizon_ms % MINUTE
        self.tick, self.step, self.quote_unit = tick, step, tick * step
        self.first_day = self.listed // DAY
        self.last_day = (self.horizon - 1) // DAY  # the day holding the horizon's last synthetic minute
        rng = random.Random(f"{seed}/{symbol}/days")
        # one shock per calendar day from the listing on, so a later start keeps the same shocks
        shocks = [rng.gauss(0, 1) for _ in range(self.first_day - 1, self.last_day + 1)]
        level, levels = 0.0, [0.0]
        for shock in reversed(shocks[1:]):
            level = level * MEAN_REVERSION + DAILY_VOLATILITY * shock
            levels.append(level)
        levels.reverse()  # closes of days first_day-1 ... last_day, log-relative to the anchor
        top = max_ticks or 10**15
        self.closes = [min(top, max(min_ticks, round(anchor * math.exp(x)))) for x in levels]
        # steps an average trade buys at a price of 1 quote unit (trade sizes are set in USDT)
        self.trade_steps = TRADE_NOTIONAL / quote_usd / float(step)
        self._days: dict[int, Node] = {}
        self._splits: OrderedDict[tuple, list[Node]] = OrderedDict()

    @property
    def empty(self) -> bool:
        return self.horizon <= self.listed

    # -- nodes ----------------------------------------------------------------------------------

    def day(self, index: int) -> Node:
        node = self._days.get(index)
        if node is None:
            node = self._days[index] = self._make_day(index)
        return node

    def _make_day(self, index: int) -> Node:
        rng = random.Random(f"{self.seed}/{self.symbol}/day/{index}")
        o, c = self.closes[index - self.first_day], self.closes[index - self.first_day + 1]
        h = max(o, c, math.ceil(max(o, c) * math.exp(abs(rng.gauss(0, 0.4 * DAILY_VOLATILITY)))))
        l = max(1, min(o, c, math.floor(min(o, c) * math.exp(-abs(rng.gauss(0, 0.4 * DAILY_VOLATILITY))))))  # noqa: E741
        n = max(4, round(TRADES_PER_MINUTE * 1440 * rng.lognormvariate(0, 0.3)))
        price = (o + c) / 2 * float(self.tick)
        per_trade = self.trade_steps / price
        v = max(n, round(n * per_trade * rng.lognormvariate(0, 0.25)))
        typical = (o + h + l + c) / 4
        q = min(h * v, max(l * v, round(v * typical)))
        tv = round(v * rng.uniform(0.4, 0.6))
        tq_low, tq_high = max(l * tv, q - h * (v - tv)), min(h * tv, q - l * (v - tv))
        tq = min(tq_high, max(tq_low, round(tv * q / v * rng.uniform(0.999, 1.001))))
        return Node(o, h, l, c, n, v, q, tv, tq)

    def _children(self, level: str, index: int) -> list[Node]:
        """The 24 hours of day `index` ("h") or the 60 minutes of hour `index` ("m") or the 60
        seconds of minute `index` ("s")."""
        key = (level, index)
        cached = self._splits.get(key)
        if cached is not None:
            self._splits.move_to_end(key)
            return cached
        if level == "h":
            parent, before, k = self.day(index), self.closes[index - self.first_day], 24
        elif level == "m":
            parent, before, k = self.hour(index), self.close_before(index * HOUR), 60
        else:
            parent, before, k = self.minute(index), self.close_before(index * MINUTE), 60
        rng = random.Random(f"{self.seed}/{self.symbol}/{level}/{index}")
        children = split(parent, before, k, rng)
        if level != "s":  # second splits are cheap and rarely reused
            self._splits[key] = children
            if len(self._splits) > SPLIT_CACHE:
                self._splits.popitem(last=False)
        return children

    def hour(self, index: int) -> Node:
        return self._children("h", index // 24)[index % 24]

    def minute(self, index: int) -> Node:
        return self._children("m", index // 60)[index % 60]

    def second(self, index: int) -> Node:
        return self._children("s", index // 60)[index % 60]

    def close_before(self, ms: int) -> int:
        """The close of the synthetic candle that ends at `ms` (the listing price before it)."""
        if ms <= self.listed:
            return self.closes[0]
        if ms % DAY == 0:
            return self.closes[ms // DAY - self.first_day]
        if ms % HOUR == 0:
            return self.hour(ms // HOUR - 1).c
        if ms % MINUTE == 0:
            return self.minute(ms // MINUTE - 1).c
        return self.second(ms // SECOND - 1).c

    def aggregate(self, start: int, end: int) -> Node | None:
        """The synthetic candle of [start, end) (second-aligned, clipped to listing and horizon), from
        the fewest nodes: whole days, then hours, minutes and seconds at the edges."""
        t, end = max(start, self.listed), min(end, self.horizon)
        nodes = []
        while t < end:
            if t % DAY == 0 and t + DAY <= end:
                nodes.append(self.day(t // DAY))
                t += DAY
            elif t % HOUR == 0 and t + HOUR <= end:
                nodes.append(self.hour(t // HOUR))
                t += HOUR
            elif t % MINUTE == 0 and t + MINUTE <= end:
                nodes.append(self.minute(t // MINUTE))
                t += MINUTE
            else:
                nodes.append(self.second(t // SECOND))
                t += SECOND
        return merge(nodes)

    # -- Decimals ---------------------------------------------------------------------------------

    def to_candle(self, node: Node, open_time: int) -> Candle:
        tick, step, unit = self.tick, self.step, self.quote_unit
        return Candle(
            open_time,
            node.o * tick,
            node.h * tick,
            node.l * tick,
            node.c * tick,
            volume=node.v * step,
            quote_volume=node.q * unit,
            count=node.n,
            taker_buy_volume=node.tv * step,
            taker_buy_quote=node.tq * unit,
        )

    def to_node(self, candle: Candle, prev_close: Decimal) -> Node:
        """A recorded minute in integers (for splitting it into seconds the kept trades no longer cover)."""
        if candle.count == 0:
            return flat(int(prev_close / self.tick))
        tick, step, unit = self.tick, self.step, self.quote_unit
        return Node(
            int(candle.open / tick),
            int(candle.high / tick),
            int(candle.low / tick),
            int(candle.close / tick),
            candle.count,
            int(candle.volume / step),
            int(candle.quote_volume / unit),
            int(candle.taker_buy_volume / step),
            int(candle.taker_buy_quote / unit),
        )

    def split_recorded(self, minute_index: int, node: Node, prev_close: int) -> list[Node]:
        """The 60 seconds of a recorded minute, for seconds whose trades have been dropped."""
        return split(node, prev_close, 60, random.Random(f"{self.seed}/{self.symbol}/rs/{minute_index}"))
