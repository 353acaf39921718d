"""Binance's update-id rule for diff depth, once: does a diff continue a book, repeat it, or leave a gap.

"How to manage a local order book correctly" (web-socket-streams.md): after a snapshot with
`lastUpdateId`, diffs with `u` <= lastUpdateId are already in it; the first diff applied must have
`U` <= lastUpdateId + 1 <= `u`; after that each diff's `U` is the previous diff's `u` + 1. Anything
else means updates were missed, and the follower needs a new snapshot.

The relay's book (workers/order_book.py), the web process's view of each depth channel and every
client's cursor (app/ws_session.py) follow their books with a `DepthSequence`.
"""

from __future__ import annotations

from enum import Enum


class Step(Enum):
    OLD = "old"  # u <= the held update id: the follower already has it
    NEXT = "next"  # continues the book: apply (or send) it, then `advance(u)`
    GAP = "gap"  # updates between the held id and U were missed: a new snapshot is needed


class DepthSequence:
    """Where one follower of a book stands: the update id it holds (None: waiting for a snapshot) and
    whether the next diff is the first after that snapshot (which may start before it)."""

    __slots__ = ("update_id", "_after_snapshot")

    def __init__(self, update_id: int | None = None):
        self.update_id = update_id
        self._after_snapshot = update_id is not None

    @property
    def synced(self) -> bool:
        return self.update_id is not None

    def snapshot(self, last_update_id: int) -> None:
        """The follower now holds a snapshot at `last_update_id`."""
        self.update_id = last_update_id
        self._after_snapshot = True

    def lose(self) -> None:
        """The follower's book is gone: nothing continues it until the next snapshot."""
        self.update_id = None
        self._after_snapshot = False

    def step(self, first: int, final: int) -> Step:
        """Classify the diff `U`=first .. `u`=final against the held id (which must be synced)."""
        held = self.update_id
        if held is None:
            raise RuntimeError("DepthSequence.step() before a snapshot: check `synced` first")
        if final <= held:
            return Step.OLD
        if first == held + 1 or (self._after_snapshot and first <= held + 1):
            return Step.NEXT
        return Step.GAP

    def advance(self, final: int) -> None:
        """A diff ending at `final` was applied (or sent), or is where following restarts."""
        self.update_id = final
        self._after_snapshot = False
