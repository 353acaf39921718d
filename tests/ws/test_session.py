"""One client's state machine (app/ws_session.py) without sockets, Redis or asyncio: frames in, frames
and verdicts out, time from a clock the test turns."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from app.ws_protocol import Channel, ChannelKind, EventId, Ping, Subscribe
from app.ws_session import Abuse, CutSlow, Delivery, MessageRate, Outbox, Rate, Refuse, Session


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Principal:
    sub: str
    exp: int


def session(clock=None, capacity: int = 4, **limits) -> Session:
    options = {"message_rate": 5, "max_subscriptions": 4, "max_depth": 2, **limits}
    return Session(capacity=capacity, clock=clock or Clock(), **options)


def sent(s: Session) -> list[dict]:
    return [orjson.loads(frame[2:]) for frame in s.outbox.take(100)]


DEPTH = Channel(ChannelKind.DEPTH, "BTCUSDT")
USER = Channel(ChannelKind.USER)


def test_outbox_is_bounded_and_conflates_latest_wins():
    clock = Clock()
    outbox = Outbox(3, clock)
    outbox.put_latest("ticker:BTCUSDT", b"t1")
    assert outbox.put(b"a") and outbox.put(b"b")
    outbox.put_latest("ticker:BTCUSDT", b"t2")  # replaces the frame not sent yet, keeps its place
    assert not outbox.put(b"c") and outbox.overflowed_at == 1000.0
    clock.now += 3
    assert outbox.stuck_for(clock()) == 3
    assert outbox.take(10) == [b"t2", b"a", b"b"]
    assert outbox.overflowed_at is None and len(outbox) == 0 and outbox.stuck_for(clock()) == 0


def test_an_idle_writer_is_woken_or_bypassed_and_order_holds():
    outbox = Outbox(4)
    written, wakes = [], []
    outbox.direct = lambda frame: written.append(frame) or len(written) < 2
    outbox.wake = lambda: wakes.append(1)
    outbox.idle = True
    assert outbox.put(b"a") and len(outbox) == 0 and written == [b"a"]  # direct: no queueing
    assert outbox.put(b"b") and len(outbox) == 1 and wakes == [1]  # the socket is full: queued, writer woken
    assert outbox.put(b"c") and written == [b"a", b"b"]  # behind a queued frame: never direct
    outbox.idle = False
    assert outbox.put(b"d") and wakes == [1, 1]  # a busy writer is not woken, nor bypassed
    assert outbox.take(10) == [b"b", b"c", b"d"]


def test_depth_needs_a_snapshot_then_continuous_diffs_else_a_resync():
    s = session()
    s.subscribed([DEPTH])
    name = DEPTH.name
    assert s.depth_diff(name, 1, 5, b"d") == Delivery.OK and len(s.outbox) == 0  # waits for a snapshot
    assert s.depth_snapshot(name, 10, b"s") == Delivery.OK
    assert s.depth_diff(name, 5, 10, b"old") == Delivery.OK and len(s.outbox) == 1  # covered by it
    assert s.depth_diff(name, 9, 12, b"d1") == Delivery.OK and s.depth[name].update_id == 12  # U <= 11 <= u
    assert s.depth_diff(name, 12, 13, b"overlap") == Delivery.RESYNC  # after the first: U must be 13
    s.depth_snapshot(name, 20, b"s2")
    assert s.depth_diff(name, 21, 22, b"d2") == Delivery.OK
    assert s.depth_diff(name, 24, 25, b"gap") == Delivery.RESYNC and not s.depth[name].synced


def test_depth_overflow_asks_for_a_snapshot_but_a_strict_message_cuts():
    s = session(capacity=1)
    s.subscribed([DEPTH])
    s.depth_snapshot(DEPTH.name, 1, b"s")
    assert s.depth_diff(DEPTH.name, 2, 2, b"d") == Delivery.RESYNC
    assert s.push(b"trade") == Delivery.CUT


def test_user_events_are_held_during_a_replay_and_never_sent_twice():
    s = session(capacity=10)
    s.subscribed([USER])
    assert s.user_event(EventId(5, 0), b"e5") == Delivery.OK and len(s.outbox) == 0  # held
    start, errors = s.start_user(None, EventId(4, 0), None)
    assert start == EventId(4, 2**64 - 1) and errors == []  # read the stream from just before 5-0
    assert s.replay_done(EventId(5, 0))  # the replay ended at 5-0: live from now
    assert s.user_event(EventId(5, 0), b"e5") == Delivery.OK and len(s.outbox) == 0
    assert s.user_event(EventId(6, 0), b"e6") == Delivery.OK and len(s.outbox) == 1


def test_a_replay_sends_held_events_after_the_stream_and_rereads_when_some_were_dropped():
    s = session(capacity=2)
    s.subscribed([USER])
    start, _ = s.start_user(EventId(1, 0), EventId(9, 0), None)
    assert start == EventId(1, 0)
    s.replay_started()
    for n in (8, 9, 10):  # the third does not fit the holding buffer (= queue capacity)
        s.user_event(EventId(n, 0), b"e")
    assert s.replay_restart() and s.next_held(EventId(9, 0)) is None  # read the stream again
    s.user_event(EventId(11, 0), b"e11")
    assert s.next_held(EventId(10, 0)) == (EventId(11, 0), b"e11")
    assert s.replay_done(EventId(11, 0)) and s.user_cursor == EventId(11, 0)


def test_resume_errors_ahead_and_trimmed():
    s = session()
    s.subscribed([USER])
    _, errors = s.start_user(EventId(50, 0), EventId(9, 0), None)
    assert [e.code for e in errors] == ["INVALID_EVENT_ID"]
    s.subscribed([USER])
    _, errors = s.start_user(EventId(2, 0), EventId(9, 0), EventId(5, 0))
    assert [e.code for e in errors] == ["EVENTS_TRIMMED"]


def test_client_frames_are_parsed_refused_or_called_abuse_by_the_clock():
    clock = Clock(100.1)
    s = session(clock, message_rate=2)
    verdicts = [s.receive(b'{"type":"ping"}') for _ in range(5)]
    assert verdicts[:2] == [Ping(), Ping()]
    assert isinstance(verdicts[2], Refuse) and verdicts[2].error.code == "RATE_LIMITED"
    assert isinstance(verdicts[4], Abuse)
    clock.now = 101.0
    assert s.receive(b'{"type":"nope"}').error.code == "UNKNOWN_TYPE"


def test_message_rate_refuses_then_calls_abuse():
    rate = MessageRate(2)
    assert [rate.check(100.1) for _ in range(5)] == [Rate.OK, Rate.OK, Rate.REFUSED, Rate.REFUSED, Rate.ABUSE]
    assert rate.check(101.0) == Rate.OK  # a new second


def test_subscriptions_are_planned_against_the_limits():
    s = session(max_subscriptions=3, max_depth=1)
    s.subscribed([Channel(ChannelKind.TICKER, "ETHUSDT")])
    resolved = [
        ("depth:btcusdt", DEPTH),
        ("depth:ETHUSDT", Channel(ChannelKind.DEPTH, "ETHUSDT")),
        ("ticker:x", _invalid()),
        ("depth:BTCUSDT", DEPTH),
        ("trades:BTCUSDT", Channel(ChannelKind.TRADES, "BTCUSDT")),
        ("trades:ETHUSDT", Channel(ChannelKind.TRADES, "ETHUSDT")),
    ]
    plan = s.plan_subscribe(resolved, follows_depth=lambda name: False, depth_room=1)
    assert plan.accepted == ["depth:BTCUSDT", "trades:BTCUSDT"]
    assert [(e.code, name) for e, name in plan.errors] == [
        ("DEPTH_LIMIT", "depth:ETHUSDT"),
        ("INVALID_SYMBOL", "ticker:x"),
        ("SUBSCRIPTION_LIMIT", "trades:ETHUSDT"),
    ]


def _invalid():
    from app.errors import BadRequest

    return BadRequest("Unknown symbol 'x'", code="INVALID_SYMBOL")


def test_ticks_cut_a_stuck_client_and_close_for_missing_or_expired_tokens():
    clock = Clock()
    stuck = session(clock, capacity=1)
    stuck.push(b"a")
    stuck.push(b"b")  # overflows now
    clock.now += 2
    assert stuck.tick(wall=0, slow_after=2) is None
    clock.now += 0.5
    assert isinstance(stuck.tick(wall=0, slow_after=2), CutSlow)

    waiting = session(clock)
    waiting.await_token(Subscribe(("user",)))
    clock.now += 11
    assert waiting.tick(wall=0, slow_after=2).error.code == "TOKEN_MISSING"

    held = session(clock)
    held.await_token(Subscribe(("user",)))
    assert held.authenticated(Principal("alice", exp=5000)) == Subscribe(("user",))
    assert held.tick(wall=5009, slow_after=2) is None
    assert held.tick(wall=5011, slow_after=2).error.code == "TOKEN_EXPIRED"


def test_fail_queues_the_error_then_the_close():
    s = session()
    from app.errors import Unauthorized

    assert s.fail(Unauthorized("Token has been revoked", code="TOKEN_REVOKED"))
    assert not s.fail(Unauthorized("again"))
    frames = s.outbox.take(10)
    assert orjson.loads(frames[0][2:])["code"] == "TOKEN_REVOKED" and frames[1].code == 4401
