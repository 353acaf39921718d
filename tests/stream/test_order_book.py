"""The local order book procedure (workers/order_book.py), step by step as web-socket-streams.md
describes it, and against a reference book under random event sequences."""

from __future__ import annotations

import random
from decimal import Decimal

from hypothesis import given, settings, strategies as st

from workers.order_book import OrderBook, Outcome


def event(first: int, last: int, bids=(), asks=(), time_ms: int = 0) -> dict:
    return {
        "e": "depthUpdate",
        "E": time_ms,
        "s": "BTCUSDT",
        "U": first,
        "u": last,
        "b": [list(level) for level in bids],
        "a": [list(level) for level in asks],
    }


SNAPSHOT = {
    "lastUpdateId": 100,
    "bids": [["10.00", "1.0"], ["9.00", "2.0"]],
    "asks": [["11.00", "1.5"], ["12.00", "3.0"]],
}


def synced_book() -> OrderBook:
    book = OrderBook("BTCUSDT")
    assert book.on_event(event(95, 101, bids=[("10.00", "1.1")])).outcome is Outcome.NEED_SNAPSHOT
    assert book.load(SNAPSHOT).outcome is Outcome.SYNCED
    return book


def test_the_first_event_asks_for_a_snapshot_and_later_ones_are_buffered():
    book = OrderBook("BTCUSDT")
    assert book.on_event(event(90, 95)).outcome is Outcome.NEED_SNAPSHOT
    assert book.on_event(event(96, 99)).outcome is Outcome.BUFFERED
    assert not book.synced


def test_a_snapshot_older_than_the_first_buffered_event_is_fetched_again():
    book = OrderBook("BTCUSDT")
    book.on_event(event(101, 103))
    assert book.load(SNAPSHOT).outcome is Outcome.STALE  # lastUpdateId 100 < U 101
    assert not book.synced and len(book.buffer) == 1  # the buffer is kept for the next snapshot
    assert book.load({**SNAPSHOT, "lastUpdateId": 101}).outcome is Outcome.SYNCED
    assert book.update_id == 103


def test_buffered_events_up_to_the_snapshot_are_dropped_and_the_rest_applied():
    book = OrderBook("BTCUSDT")
    book.on_event(event(90, 99, bids=[("10.00", "7.0")]))  # already in the snapshot
    book.on_event(event(100, 102, bids=[("10.00", "0")], asks=[("11.50", "4.0")]))  # straddles 100
    book.on_event(event(103, 104, asks=[("12.00", "0")]))
    assert book.load(SNAPSHOT).outcome is Outcome.SYNCED
    assert book.update_id == 104
    assert book.top() == {"lastUpdateId": 104, "bids": [["9.00", "2.0"]], "asks": [["11.00", "1.5"], ["11.50", "4.0"]]}


def test_applied_diffs_are_published_continuous_from_the_snapshot():
    book = OrderBook("BTCUSDT")
    book.on_event(event(90, 99))
    assert book.load(SNAPSHOT).outcome is Outcome.SYNCED  # nothing left to apply: the book is at 100
    first = book.on_event(event(99, 105, bids=[("10.00", "5.0")], time_ms=7))
    assert first.outcome is Outcome.APPLIED
    # the event started before the snapshot; what subscribers get continues from lastUpdateId
    assert first.diff == {"U": 101, "u": 105, "bids": [["10.00", "5.0"]], "asks": [], "E": 7}
    second = book.on_event(event(106, 106))
    assert (second.diff["U"], second.diff["u"]) == (106, 106)


def test_old_events_are_ignored():
    book = synced_book()
    assert book.on_event(event(98, 101)).outcome is Outcome.IGNORED
    assert book.update_id == 101


def test_a_gap_loses_the_book_and_restarts_from_the_event_after_it():
    book = synced_book()
    lost = book.on_event(event(103, 104, asks=[("11.00", "9.0")]))  # 102 is missing
    assert lost.outcome is Outcome.LOST
    assert not book.synced and book.bids == {} and book.buffer[0]["U"] == 103
    assert book.on_event(event(105, 106)).outcome is Outcome.BUFFERED  # the snapshot is already asked for
    assert book.load({**SNAPSHOT, "lastUpdateId": 104}).outcome is Outcome.SYNCED
    assert book.update_id == 106


def test_a_gap_inside_the_buffer_after_the_snapshot_is_a_lost_book():
    book = OrderBook("BTCUSDT")
    book.on_event(event(99, 101))
    book.on_event(event(104, 105))  # 102-103 never arrived
    assert book.load(SNAPSHOT).outcome is Outcome.LOST
    assert book.buffer[0]["U"] == 104 and not book.synced


def test_quantity_zero_removes_a_level_and_top_is_sorted_and_bounded():
    book = synced_book()
    bids = [(f"{p}.00", "1.0") for p in range(1, 9)]
    asks = [(f"{p}.00", "1.0") for p in range(13, 40)]
    book.on_event(event(102, 102, bids=bids + [("10.00", "0")], asks=asks))
    top = book.top(5)
    assert [p for p, _ in top["bids"]] == ["9.00", "8.00", "7.00", "6.00", "5.00"]
    assert [p for p, _ in top["asks"]] == ["11.00", "12.00", "13.00", "14.00", "15.00"]
    assert len(book.top()["asks"]) == 20


def test_prices_compare_as_numbers_not_strings():
    book = synced_book()
    book.on_event(event(102, 102, bids=[("9.50", "1"), ("10.000", "0")]))
    assert [p for p, _ in book.top()["bids"]] == ["9.50", "9.00"]


# -- against a reference -------------------------------------------------------------------------


def reference_stream(rng: random.Random, count: int):
    """A true book and the diff events that describe its changes (ids 1..), as Binance sends them."""
    book: dict[tuple[str, int], int] = {}
    events, next_id = [], 1
    for _ in range(count):
        updates = rng.randint(1, 4)
        changes = {}
        for _ in range(rng.randint(1, 5)):
            side, price = rng.choice("ba"), rng.randint(90, 110)
            qty = 0 if rng.random() < 0.3 else rng.randint(1, 9)
            changes[(side, price)] = qty
        for key, qty in changes.items():
            if qty:
                book[key] = qty
            else:
                book.pop(key, None)
        events.append(
            (
                {
                    "U": next_id,
                    "u": next_id + updates - 1,
                    "E": 0,
                    "b": [[str(p), str(q)] for (s, p), q in changes.items() if s == "b"],
                    "a": [[str(p), str(q)] for (s, p), q in changes.items() if s == "a"],
                },
                dict(book),
            )
        )
        next_id += updates
    return events


def as_levels(state: dict, side: str) -> dict[Decimal, Decimal]:
    return {Decimal(p): Decimal(q) for (s, p), q in state.items() if s == side}


def snapshot_of(state: dict, last_update_id: int) -> dict:
    return {
        "lastUpdateId": last_update_id,
        "bids": [[str(p), str(q)] for (s, p), q in state.items() if s == "b"],
        "asks": [[str(p), str(q)] for (s, p), q in state.items() if s == "a"],
    }


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    start=st.integers(0, 30),
    snapshot_at=st.integers(0, 20),
    gaps=st.lists(st.integers(1, 79), max_size=3),
)
def test_the_book_follows_the_true_book_and_every_gap_is_noticed(seed, start, snapshot_at, gaps):
    """Events from `start` on, the snapshot taken a little later (while events are buffered), some
    events withheld: the book equals the truth whenever it is synced, and each gap is reported."""
    rng = random.Random(seed)
    stream = reference_stream(rng, 80)
    book = OrderBook("T")
    delivered = [i for i in range(start, 80) if i not in set(gaps)]
    pending_snapshot = False
    lost = 0
    for position, i in enumerate(delivered):
        ev, truth = stream[i]
        result = book.on_event(ev)
        if result.outcome in (Outcome.NEED_SNAPSHOT, Outcome.LOST):
            pending_snapshot = True
            lost += result.outcome is Outcome.LOST
        if pending_snapshot and position % (snapshot_at + 1) == 0:
            # the snapshot as of the latest event (REST is at least as recent as what was streamed)
            loaded = book.load(snapshot_of(truth, ev["u"]))
            assert loaded.outcome in (Outcome.SYNCED, Outcome.LOST)
            lost += loaded.outcome is Outcome.LOST
            pending_snapshot = loaded.outcome is Outcome.LOST
        if book.synced:
            assert book.update_id == ev["u"]
            assert {Decimal(p): Decimal(q) for p, q in book.top(100)["bids"]} == as_levels(truth, "b")
            assert {Decimal(p): Decimal(q) for p, q in book.top(100)["asks"]} == as_levels(truth, "a")
    withheld_while_following = [g for g in gaps if start <= g < 79]
    if not withheld_while_following:
        assert lost == 0
