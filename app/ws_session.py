"""One /ws client's state machine without I/O: what it follows, where it stands, and what it is sent.

    events in                                       frames / actions out
    receive(raw client frame)                   →   a ClientMessage, or Refuse / Abuse (an error to send)
    push / push_latest / depth_snapshot /
      depth_diff / user_event (relay messages)  →   frames queued in `outbox`; Delivery (OK, CONFLATED,
                                                    RESYNC: needs a fresh snapshot, CUT: too slow)
    tick(wall clock)                            →   None, CutSlow or Fail (auth deadline, expired token)
    plan_subscribe / subscribed / unsubscribed  →   which channels to acquire, and the errors to send
    start_user / resync_user / replayed / ...   →   where a user-event replay starts, when it is live

`Outbox` is the bounded send queue (tickers conflated: latest wins). The time comes from the `clock`
given to the session (time.monotonic in the server, a counter in tests). app/ws.py is the socket
around a session, app/hub.py the Redis side; neither decides any of the above.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

from services.depth_sequence import DepthSequence, Step

from .errors import ApiError, BadRequest, TooManyRequests, Unauthorized, ws_close_code, ws_error_frame
from .ws_protocol import Channel, ChannelKind, ClientMessage, EventId, encode, parse_client_message

AUTH_TIMEOUT = 10.0  # seconds to send a token when nothing can be done without one
EXPIRY_GRACE = 10  # seconds a token may be past `exp` before its connection is closed
MAX_SEQ = 2**64 - 1  # the largest sequence part of a stream id

Clock = Callable[[], float]


class Delivery(IntEnum):
    OK = 0  # queued, or skipped as already covered
    RESYNC = 1  # this depth channel needs a fresh snapshot for this client
    CUT = 2  # the client cannot take a message it must not miss: too slow
    CONFLATED = 3  # queued in place of an older frame of its channel the client had not got yet


class Close:
    """Queued after the frames a client must still get: close the connection with this code."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str):
        self.code = code
        self.reason = reason


# -- one client's send queue ---------------------------------------------------------------------------


class Outbox:
    """Frames waiting for one client's writer, at most `capacity` of them.

    Conflated channels (tickers) hold one slot each — a marker in the queue and the latest frame
    beside it — so a newer frame replaces one not yet sent instead of queueing behind it.

    The socket plugs in two hooks: `wake()` is called when a frame is queued for an idle writer, and
    `direct(frame) -> bool`, when set, is tried first while the queue is empty and the writer idle
    (nothing queued or in flight, so order holds): a client keeping up costs no queueing and no task
    switch. It returns False when the socket cannot take the frame now, and the frame is queued.
    """

    __slots__ = ("capacity", "clock", "direct", "wake", "idle", "_items", "_latest", "closed", "overflowed_at")

    def __init__(self, capacity: int, clock: Clock = time.monotonic):
        self.capacity = capacity
        self.clock = clock
        self.direct: Callable[[bytes], bool] | None = None
        self.wake: Callable[[], None] | None = None
        self.idle = False  # the writer waits for frames (set by the socket)
        self._items: deque | None = None  # made on the first backlog: most clients never have one
        self._latest: dict[str, bytes] | None = None
        self.closed = False
        self.overflowed_at: float | None = None  # first overflow since the queue last ran empty

    def __len__(self) -> int:
        return len(self._items) if self._items else 0

    def has_room(self) -> bool:
        return len(self) < self.capacity

    def _queue(self) -> deque:
        if self._items is None:
            self._items = deque()
        return self._items

    def put(self, frame: bytes) -> bool:
        """Queue `frame`; False (and nothing queued) when the queue is full."""
        if self.closed:
            return True
        if self.idle and not self._items and self.direct is not None and self.direct(frame):
            return True
        items = self._queue()
        if len(items) >= self.capacity:
            if self.overflowed_at is None:
                self.overflowed_at = self.clock()
            return False
        items.append(frame)
        self._wake()
        return True

    def put_latest(self, key: str, frame: bytes) -> bool:
        """Queue `frame` in `key`'s slot; True when it replaced a frame of that slot not yet sent."""
        if self.closed:
            return False
        if self.idle and not self._items and self.direct is not None and self.direct(frame):
            return False
        latest = self._latest
        if latest is None:
            latest = self._latest = {}
        replaced = key in latest
        if not replaced:
            self._queue().append(key)
        latest[key] = frame
        self._wake()
        return replaced

    def close_after(self, code: int, reason: str) -> None:
        """Send what is queued, then close; nothing queued after this is sent."""
        if not self.closed:
            self._queue().append(Close(code, reason))
            self.closed = True
            self._wake()

    def abandon(self) -> None:
        """Stop now: the writer exits without sending what is queued."""
        self.closed = True
        self._items = deque([Close(0, "")])
        self._wake()

    def take(self, limit: int) -> list:
        """Up to `limit` frames (a `Close` ends the list), markers resolved to their latest frame."""
        items, out = self._queue(), []
        while items and len(out) < limit:
            item = items.popleft()
            if isinstance(item, str):
                item = self._latest.pop(item)
            out.append(item)
            if isinstance(item, Close):
                break
        if not items:
            self.overflowed_at = None
            self._items = None
        return out

    def stuck_for(self, now: float) -> float:
        """Seconds the queue has stayed full since it first overflowed (0 when it has room again)."""
        return 0.0 if self.overflowed_at is None else now - self.overflowed_at

    def _wake(self) -> None:
        if self.idle and self.wake is not None:
            self.wake()


# -- incoming message rate ------------------------------------------------------------------------------


class Rate(IntEnum):
    OK = 0
    REFUSED = 1  # over the limit: answer with an error frame, ignore the message
    ABUSE = 2  # more than twice the limit in one second: close the connection


class MessageRate:
    """At most `limit` messages a second from one client (fixed one-second windows)."""

    __slots__ = ("limit", "_window", "_count")

    def __init__(self, limit: int):
        self.limit = limit
        self._window = 0
        self._count = 0

    def check(self, now: float) -> Rate:
        window = int(now)
        if window != self._window:
            self._window, self._count = window, 0
        self._count += 1
        if self._count > 2 * self.limit:
            return Rate.ABUSE
        return Rate.REFUSED if self._count > self.limit else Rate.OK


# -- what the session asks its socket to do ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refuse:
    """Answer with this error frame; the connection stays."""

    error: ApiError


@dataclass(frozen=True, slots=True)
class Abuse:
    """Send this error frame, then close with its code."""

    error: ApiError


@dataclass(frozen=True, slots=True)
class CutSlow:
    """Close at once (4008): the queue is what the client could not take."""

    reason: str


Fail = Abuse  # a tick's verdict on an auth deadline or an expired token: error frame, then close


@dataclass(slots=True)
class SubscribePlan:
    accepted: list[str] = field(default_factory=list)  # names to confirm, in request order
    new: list[Channel] = field(default_factory=list)  # channels this connection does not follow yet
    errors: list[tuple[ApiError, str | None]] = field(default_factory=list)


# -- the session ----------------------------------------------------------------------------------------


class Session:
    """One client's side of the fan-out and of its subscriptions (no sockets, no Redis, no asyncio)."""

    __slots__ = (
        "clock",
        "outbox",
        "rate",
        "max_subscriptions",
        "max_depth",
        "channels",
        "depth",
        "principal",
        "auth_deadline",
        "pending",
        "user_cursor",
        "user_pending",
        "user_dropped",
        "user_baseline",
    )

    def __init__(
        self, *, capacity: int, message_rate: int, max_subscriptions: int, max_depth: int, clock: Clock = time.monotonic
    ):
        self.clock = clock
        self.outbox = Outbox(capacity, clock)
        self.rate = MessageRate(message_rate)
        self.max_subscriptions = max_subscriptions
        self.max_depth = max_depth
        self.channels: set[str] = set()
        self.depth: dict[str, DepthSequence] = {}  # depth channel → where this client's book stands
        self.principal = None
        self.auth_deadline: float | None = None
        self.pending = None  # a shortcut's subscription, waiting for a token
        self.user_cursor: EventId | None = None  # the last user event id sent
        self.user_pending: deque | None = None  # live user events held back while replaying
        self.user_dropped = False  # some were not held: the replay reads them again
        self.user_baseline: EventId | None = None  # where a catch-up starts if nothing was sent yet

    # -- client frames -------------------------------------------------------------------------------

    def receive(self, raw: str | bytes) -> ClientMessage | Refuse | Abuse:
        verdict = self.rate.check(self.clock())
        if verdict == Rate.ABUSE:
            return Abuse(
                TooManyRequests(f"More than {2 * self.rate.limit} messages in one second", code="RATE_LIMITED")
            )
        if verdict == Rate.REFUSED:
            return Refuse(
                TooManyRequests(
                    f"At most {self.rate.limit} messages a second; this one was ignored", code="RATE_LIMITED"
                )
            )
        try:
            return parse_client_message(raw, self.max_subscriptions)
        except ApiError as exc:
            return Refuse(exc)

    def await_token(self, subscription=None) -> None:
        """Nothing (or this shortcut's subscription) can proceed without a token: start the deadline."""
        self.pending = subscription
        self.auth_deadline = self.clock() + AUTH_TIMEOUT

    def authenticated(self, principal):
        """A token arrived: returns the subscription held for it, if any."""
        self.principal = principal
        self.auth_deadline = None
        subscription, self.pending = self.pending, None
        return subscription

    def plan_subscribe(
        self, resolved: list[tuple[object, Channel | ApiError]], follows_depth: Callable[[str], bool], depth_room: int
    ) -> SubscribePlan:
        """Channels as resolved (or refused) by the caller → which are confirmed, new, or refused
        (subscription limit; depth books per client, each of which costs the relay a REST snapshot)."""
        plan = SubscribePlan()
        new_books = 0
        for raw, channel in resolved:
            if isinstance(channel, ApiError):
                plan.errors.append((channel, raw if isinstance(raw, str) else None))
                continue
            name = channel.name
            if name in plan.accepted:
                continue
            if name not in self.channels:
                if len(self.channels) + len(plan.new) >= self.max_subscriptions:
                    plan.errors.append(
                        (
                            BadRequest(
                                f"At most {self.max_subscriptions} subscriptions per connection",
                                code="SUBSCRIPTION_LIMIT",
                            ),
                            name,
                        )
                    )
                    continue
                if channel.kind == ChannelKind.DEPTH and not follows_depth(name):
                    if depth_room <= new_books:
                        plan.errors.append(
                            (
                                TooManyRequests(
                                    f"At most {self.max_depth} depth channels per client (token, or IP address without "
                                    "one)",
                                    code="DEPTH_LIMIT",
                                ),
                                name,
                            )
                        )
                        continue
                    new_books += 1
                plan.new.append(channel)
            plan.accepted.append(name)
        return plan

    def subscribed(self, channels: list[Channel]) -> None:
        """Deliveries start; a depth channel first waits for a snapshot, the user channel holds live
        events until `start_user` knows where it resumes."""
        for channel in channels:
            self.channels.add(channel.name)
            if channel.kind == ChannelKind.DEPTH:
                self.depth[channel.name] = DepthSequence()
            elif channel.kind == ChannelKind.USER:
                self.user_pending = deque()

    def unsubscribed(self, names: list[str]) -> None:
        for name in names:
            self.channels.discard(name)
            self.depth.pop(name, None)
            if name == "user":
                self.user_pending = None
                self.user_cursor = None
                self.user_dropped = False

    # -- relay messages ------------------------------------------------------------------------------

    def send(self, message: dict) -> Delivery:
        return self.push(encode(message))

    def send_error(self, exc: ApiError, channel: str | None = None) -> Delivery:
        return self.push(encode(ws_error_frame(exc, channel)))

    def fail(self, exc: ApiError) -> bool:
        """An error frame, then the close code it maps to (4401, 4403, 4429, ...); False if closing already."""
        if self.outbox.closed:
            return False
        self.outbox.put(encode(ws_error_frame(exc)))
        self.outbox.close_after(ws_close_code(exc), exc.message[:120])
        return True

    def push(self, frame: bytes) -> Delivery:
        return Delivery.OK if self.outbox.put(frame) else Delivery.CUT

    def push_latest(self, channel: str, frame: bytes) -> Delivery:
        return Delivery.CONFLATED if self.outbox.put_latest(channel, frame) else Delivery.OK

    def depth_waiting(self, channel: str) -> None:
        """This client's book on `channel` must start again from a snapshot."""
        sequence = self.depth.get(channel)
        if sequence is not None:
            sequence.lose()

    def depth_snapshot(self, channel: str, last_update_id: int, frame: bytes) -> Delivery:
        sequence = self.depth.get(channel)
        if sequence is None:
            return Delivery.OK  # no longer followed
        if not self.outbox.put(frame):
            sequence.lose()
            return Delivery.RESYNC
        sequence.snapshot(last_update_id)
        return Delivery.OK

    def depth_diff(self, channel: str, first: int, final: int, frame: bytes) -> Delivery:
        """The U/u rule on the way to the client (services/depth_sequence.py): a diff that does not
        continue what the client holds, or that finds no room, is answered with a fresh snapshot."""
        sequence = self.depth.get(channel)
        if sequence is None or not sequence.synced:
            return Delivery.OK  # waiting for a snapshot
        step = sequence.step(first, final)
        if step is Step.OLD:
            return Delivery.OK  # the snapshot already covers it
        if step is Step.GAP or not self.outbox.put(frame):
            sequence.lose()
            return Delivery.RESYNC
        sequence.advance(final)
        return Delivery.OK

    def user_event(self, event_id: EventId, frame: bytes) -> Delivery:
        if self.user_pending is not None:  # a replay is running: it sends these when it has caught up
            if len(self.user_pending) < self.outbox.capacity:
                self.user_pending.append((event_id, frame))
            else:
                self.user_dropped = True  # they are in the stream: the replay reads them from there
            return Delivery.OK
        if self.user_cursor is not None and event_id <= self.user_cursor:
            return Delivery.OK  # already sent by the replay
        if not self.outbox.put(frame):
            return Delivery.CUT  # never skip a user event: the client resumes with lastEventId
        self.user_cursor = event_id
        return Delivery.OK

    # -- user-event replay ---------------------------------------------------------------------------

    def start_user(
        self, last_event_id: EventId | None, newest: EventId, deleted: EventId | None
    ) -> tuple[EventId | None, list[ApiError]]:
        """The user channel is registered; the stream's newest and last trimmed ids are known. Returns
        where a replay starts (exclusive; None: live from now) and the errors to tell the client."""
        errors: list[ApiError] = []
        self.user_baseline = newest
        if last_event_id is not None and last_event_id > newest:
            errors.append(
                BadRequest(
                    f"lastEventId {last_event_id} is ahead of the newest event; continuing with new events",
                    code="INVALID_EVENT_ID",
                )
            )
            last_event_id = None
        if last_event_id is None:
            pending = self.user_pending
            if not pending and not self.user_dropped:
                self.user_pending = None  # nothing arrived meanwhile: live from here
                return None, errors
            # Events arrived while the stream was asked: send them (and any not held) from the stream.
            first = pending[0][0] if pending else newest
            start = EventId(first.ms, first.seq - 1) if first.seq else EventId(first.ms - 1, MAX_SEQ)
            self.user_pending = deque()
            self.user_dropped = False
            return start, errors
        if deleted is not None and deleted > last_event_id:
            errors.append(
                BadRequest(
                    "Some events after lastEventId are no longer kept (the stream keeps about "
                    "10,000); read the account over REST to resync",
                    code="EVENTS_TRIMMED",
                )
            )
        return last_event_id, errors

    def resync_user(self) -> EventId | None:
        """The web process's pub/sub came back: where to read the stream again from (None: a replay
        is running, which reads on by itself, or nothing was ever sent)."""
        start = self.user_cursor or self.user_baseline
        if self.user_pending is None and start is not None:
            return start
        return None

    def replay_started(self) -> None:
        if self.user_pending is None:
            self.user_pending = deque()  # live events wait until the replay has caught up

    def replay_restart(self) -> bool:
        """After a page run: True when live events were dropped meanwhile (read the stream again)."""
        if self.user_dropped:
            self.user_dropped = False
            self.user_pending.clear()
            return True
        return False

    def next_held(self, cursor: EventId) -> tuple[EventId, bytes] | None:
        """The next held live event the replay has not sent yet (None: none, or some were dropped)."""
        pending = self.user_pending
        while pending and not self.user_dropped:
            event_id, frame = pending.popleft()
            if event_id > cursor:  # else the stream already gave it
                return event_id, frame
        return None

    def replay_done(self, cursor: EventId) -> bool:
        """True (live from now on) unless events were dropped meanwhile and the stream must be read again."""
        if self.user_dropped:
            return False
        self.user_pending = None  # caught up, with nothing awaited since the last check
        self.user_cursor = cursor
        return True

    # -- timer ticks ---------------------------------------------------------------------------------

    def tick(self, wall: float, slow_after: float) -> CutSlow | Fail | None:
        """Once a second: a queue full for `slow_after` s, a missed auth deadline, an expired token."""
        now = self.clock()
        if self.outbox.stuck_for(now) > slow_after:
            return CutSlow(f"Too slow: the send queue stayed full for {slow_after:g} s")
        if self.auth_deadline is not None and now > self.auth_deadline:
            return Fail(
                Unauthorized('No token was given in time: send {"type": "auth", "token"} first', code="TOKEN_MISSING")
            )
        if self.principal is not None and self.principal.exp + EXPIRY_GRACE < wall:
            return Fail(Unauthorized("Token has expired", code="TOKEN_EXPIRED"))
        return None
