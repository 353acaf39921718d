"""User events for one web process's clients: where each one resumes (`lastEventId`), the replay from
the `P user:events` Redis Stream, and the seam with the live events held meanwhile (the decisions
are each client's Session, app/ws_session.py; this reads the stream).
"""

from __future__ import annotations

import logging

import orjson
from redis.exceptions import RedisError

from services.contract.channels import DataType

from .errors import Unavailable
from .ws_protocol import EventId, data_message, encode

log = logging.getLogger("spotgate.hub")

REPLAY_PAGE = 500  # user events per XRANGE while replaying


class UserReplay:
    def __init__(self, redis, user_events_key: str):
        self.redis = redis
        self.user_events_key = user_events_key

    def resync(self, feed) -> None:
        """Pub/sub was lost: each client reads the stream again from the last event it was sent."""
        for conn, session in feed.subscribers.items():
            start = session.resync_user()
            if start is not None:
                self.replay_user_events(conn, start)

    async def start(self, conn, last_event_id: EventId | None) -> None:
        """After `register` of the user channel: replay from `last_event_id` (exclusive), then the live
        events held meanwhile; without it, live events from now on. Raises ApiError when Redis cannot say."""
        try:
            newest, deleted = await self._stream_info()
        except (RedisError, OSError):
            raise Unavailable(
                "User events are unavailable right now (Redis)", code="STREAM_UNAVAILABLE", retry_after=1
            ) from None
        start, errors = conn.session.start_user(last_event_id, newest, deleted)
        for exc in errors:
            conn.send_error(exc, "user")
        if start is not None:
            self.replay_user_events(conn, start)

    async def _stream_info(self) -> tuple[EventId, EventId | None]:
        try:
            info = await self.redis.xinfo_stream(self.user_events_key)
        except RedisError as exc:
            if "no such key" in str(exc).lower():
                return EventId(0, 0), None
            raise

        def event_id(value):
            if value is None:
                return None
            value = value.decode() if isinstance(value, bytes) else str(value)
            return None if value == "0-0" else EventId.parse(value)

        return event_id(info.get("last-generated-id")) or EventId(0, 0), event_id(info.get("max-deleted-entry-id"))

    def replay_user_events(self, conn, cursor: EventId) -> None:
        conn.session.replay_started()
        conn.replay(self._replay(conn, cursor))

    async def _replay(self, conn, cursor: EventId) -> None:
        """XRANGE (cursor, +] page by page, then the live events held meanwhile, skipping those the
        stream already gave: no gap and no duplicate at the seam (the relay XADDs before it PUBLISHes).
        Live events that did not fit the holding buffer are in the stream: read it again for them."""
        session, outbox = conn.session, conn.outbox
        try:
            while True:
                while True:
                    entries = await self.redis.xrange(
                        self.user_events_key, min=f"({cursor}", max="+", count=REPLAY_PAGE
                    )
                    for raw_id, fields in entries:
                        event_id = EventId.parse(raw_id.decode())
                        event = fields.get(b"event")
                        if event is None:
                            continue
                        await conn.room()
                        if outbox.closed:
                            return
                        outbox.put(encode(data_message(DataType.USER, "user", orjson.Fragment(event), str(event_id))))
                        cursor = event_id
                    if len(entries) < REPLAY_PAGE:
                        break
                if session.replay_restart():
                    continue
                while (held := session.next_held(cursor)) is not None:
                    await conn.room()
                    if outbox.closed:
                        return
                    outbox.put(held[1])
                    cursor = held[0]
                if session.replay_done(cursor):
                    break
        except (RedisError, OSError) as exc:
            log.warning("user event replay failed: %r", exc)
            conn.fail(
                Unavailable(
                    "User events are unavailable right now (Redis); reconnect with lastEventId",
                    code="STREAM_UNAVAILABLE",
                )
            )
