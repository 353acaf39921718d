"""A local order book kept by Binance's documented procedure, without I/O.

"How to manage a local order book correctly" (web-socket-streams.md), as a state machine the relay
feeds with diff events (`<sym>@depth@100ms`) and REST snapshots (`GET /api/v3/depth`):

    1. buffer the diff events; the first one asks for a snapshot (`Outcome.NEED_SNAPSHOT`)
    2. a snapshot whose `lastUpdateId` is below the first buffered `U` is too old: fetch again
       (`Outcome.STALE`)
    3. drop buffered events with `u` <= lastUpdateId; load the snapshot; apply the rest
    4. an event with `u` <= the book's update id is old news (ignored); the first one after the
       snapshot must have `U` <= update id + 1, each later one `U` = update id + 1 (the rule is
       services/depth_sequence.py, shared with the web tier); otherwise events were missed: the book
       is lost and the procedure restarts from that event (`Outcome.LOST`, which needs a new
       snapshot). An event that continues the book has its levels set (quantity 0 removes a level)
       and the book's update id becomes its `u` (`Outcome.APPLIED`).

An applied event is handed back as the diff the relay publishes, `{"U","u","bids","asks","E"}`, with
`U` = the previous update id + 1 — the first event after a snapshot may start before the snapshot
(its `U` <= lastUpdateId + 1 <= `u`); its levels are the state at `u` either way, so subscribers see
one continuous sequence between snapshots.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from services.depth_sequence import DepthSequence, Step

TOP_LEVELS = 20
MAX_BUFFER = 10_000  # events held while a snapshot is on its way (100 s of a 100 ms stream)


class Outcome(Enum):
    BUFFERED = "buffered"  # waiting for a snapshot, which is already asked for
    NEED_SNAPSHOT = "need_snapshot"  # fetch a REST snapshot and hand it to `load`
    STALE = "stale"  # the snapshot predates the buffered events: fetch another
    SYNCED = "synced"  # the book is live: publish its snapshot
    APPLIED = "applied"  # one diff applied: publish `Result.diff`
    IGNORED = "ignored"  # an event the book already holds
    LOST = "lost"  # a gap: the book is discarded, a new snapshot is needed


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    diff: dict | None = None


_BUFFERED = Result(Outcome.BUFFERED)
_NEED = Result(Outcome.NEED_SNAPSHOT)
_IGNORED = Result(Outcome.IGNORED)


class OrderBook:
    """One symbol's book. Prices are keyed by Decimal and kept with the strings Binance sent, so what
    goes out is exactly what came in."""

    def __init__(self, symbol: str):
        self.symbol = symbol
        self.sequence = DepthSequence()  # not synced until a snapshot is loaded
        self.bids: dict[Decimal, tuple[str, str]] = {}
        self.asks: dict[Decimal, tuple[str, str]] = {}
        self.buffer: list[dict] = []

    @property
    def update_id(self) -> int | None:
        return self.sequence.update_id

    @property
    def synced(self) -> bool:
        return self.sequence.synced

    def reset(self, keep: dict | None = None) -> None:
        """Discard the book (a gap, a lost connection); buffering restarts with `keep`, if given."""
        self.sequence.lose()
        self.bids.clear()
        self.asks.clear()
        self.buffer = [keep] if keep is not None else []

    # -- the procedure ------------------------------------------------------------------------------

    def on_event(self, event: dict) -> Result:
        """Feed one diff event (`{"U","u","b","a","E",...}` as Binance sends it)."""
        if not self.synced:
            if len(self.buffer) >= MAX_BUFFER:
                # no snapshot came for too long: start over from this event rather than grow forever
                self.buffer.clear()
            self.buffer.append(event)
            return _NEED if len(self.buffer) == 1 else _BUFFERED
        step = self.sequence.step(event["U"], event["u"])
        if step is Step.OLD:
            return _IGNORED
        if step is Step.GAP:
            self.reset(keep=event)
            return Result(Outcome.LOST)
        return Result(Outcome.APPLIED, self._apply(event))

    def load(self, snapshot: dict) -> Result:
        """Hand over a REST depth snapshot asked for by NEED_SNAPSHOT, STALE or LOST."""
        if not self.buffer:
            return _NEED  # nothing to check the snapshot against (reset meanwhile): wait for events
        last_update_id = snapshot["lastUpdateId"]
        if last_update_id < self.buffer[0]["U"]:
            return Result(Outcome.STALE)
        pending = [e for e in self.buffer if e["u"] > last_update_id]
        self.buffer = []
        self.bids = _levels(snapshot["bids"])
        self.asks = _levels(snapshot["asks"])
        self.sequence.snapshot(last_update_id)
        for position, event in enumerate(pending):
            if self.sequence.step(event["U"], event["u"]) is not Step.NEXT:  # never OLD: u > lastUpdateId
                self.reset(keep=event)
                self.buffer.extend(pending[position + 1 :])
                return Result(Outcome.LOST)
            self._apply(event)
        return Result(Outcome.SYNCED)

    def _apply(self, event: dict) -> dict:
        for side, levels in ((self.bids, event["b"]), (self.asks, event["a"])):
            for price, qty in levels:
                key = Decimal(price)
                if Decimal(qty) == 0:
                    side.pop(key, None)
                else:
                    side[key] = (price, qty)
        first = self.update_id + 1
        self.sequence.advance(event["u"])
        return {"U": first, "u": event["u"], "bids": event["b"], "asks": event["a"], "E": event.get("E")}

    # -- views --------------------------------------------------------------------------------------

    def top(self, levels: int = TOP_LEVELS) -> dict:
        """`{"lastUpdateId","bids","asks"}` with the best `levels` of each side as [price, qty] strings."""
        bids = heapq.nlargest(levels, self.bids)
        asks = heapq.nsmallest(levels, self.asks)
        return {
            "lastUpdateId": self.update_id,
            "bids": [list(self.bids[p]) for p in bids],
            "asks": [list(self.asks[p]) for p in asks],
        }


def _levels(rows) -> dict[Decimal, tuple[str, str]]:
    return {Decimal(price): (price, qty) for price, qty in rows if Decimal(qty) != 0}
