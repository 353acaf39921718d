"""Upstream WebSocket connections (websocket-client), kept open by a thread each.

    Backoff   delays between reconnects: base · 2^n (1, 2, 4 … capped), ±20 % jitter so a fleet of
              relays cut at once does not come back in lockstep
    Link      one logical upstream connection: connects, reads (answering pings), reconnects after
              any drop with backoff, and paces what it sends under Binance's limit of 5 incoming
              messages a second (pongs included: we send at most 4 a second)
    Rotating  the owner of a Link that is replaced make-before-break (the 24 h cut, serverShutdown):
              a successor opens beside the active link and takes over once it serves everything

A Link knows nothing of streams or users: its owner gives it the URL and callbacks —
`on_open(link)` (subscribe), `on_message(link, message)` (decoded JSON), `on_close(link, planned)`.
Callbacks run on the link's thread; an exception in `on_open` counts as a failed connection.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

import orjson
import websocket

from services.metrics import metrics

log = logging.getLogger("spotgate.stream.upstream")
SEND_INTERVAL = 0.25  # at most 4 messages a second, leaving room for the pong Binance also counts
READ_TIMEOUT = 1.0  # how often a blocked read looks up to check for stop
IDLE_TIMEOUT = 70.0  # Binance pings every 20 s: this long without a frame means the connection is dead


class Backoff:
    def __init__(self, base: float = 1.0, cap: float = 30.0, rng: random.Random | None = None):
        self.base, self.cap = base, cap
        self.attempts = 0
        self.rng = rng or random.Random()

    def next(self) -> float:
        delay = min(self.cap, self.base * 2 ** min(self.attempts, 30))
        self.attempts += 1
        return min(self.cap, delay * self.rng.uniform(0.8, 1.2))

    def reset(self) -> None:
        self.attempts = 0


class Link:
    def __init__(
        self,
        name: str,
        url: Callable[[], str],
        *,
        on_open: Callable[[Link], None],
        on_message: Callable[[Link, object], None],
        on_close: Callable[[Link, bool], None],
        backoff: Backoff,
        connect_timeout: float = 10.0,
        idle_timeout: float = IDLE_TIMEOUT,
    ):
        self.name = name
        self._url = url
        self._on_open, self._on_message, self._on_close = on_open, on_message, on_close
        self.backoff = backoff
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.opened_at: float | None = None  # monotonic time the current connection opened
        self.connections = 0  # how many times it has connected
        self._ws: websocket.WebSocket | None = None
        self._told_going_away: websocket.WebSocket | None = None  # the socket stop() sent 1001 on
        self._stop = threading.Event()
        self._send_lock = threading.Lock()
        self._next_send = 0.0
        self._healthy = False
        self._thread = threading.Thread(target=self._run, name=f"link-{name}", daemon=True)
        kind = name.split("-", 1)[0]  # "market-3.1" → market, "user-ws-api.2" → user: a bounded label
        m = metrics()
        self._reconnects = m.stream_reconnects.labels(kind)
        self._connect_failures = m.stream_connect_failures.labels(kind)
        self._open = m.stream_connections.labels(kind)

    def __repr__(self) -> str:
        return f"Link({self.name!r})"

    # -- control ----------------------------------------------------------------------------------

    def start(self) -> Link:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close for good (no reconnect): a close frame (1001, going away), then the socket; `on_close`
        sees planned=True."""
        self._stop.set()
        # _stop is set before _ws is read, and the run thread sets _ws before it reads _stop: so either
        # the socket is here, or the run thread sees the stop and says 1001 itself (a send lock would
        # make a shutdown wait for a send stuck on a dead peer)
        ws = self._told_going_away = self._ws
        if ws is not None:
            _going_away(ws)
        self._abort()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def drop(self) -> None:
        """Close the current connection; the link reconnects after its backoff delay."""
        self._abort()

    @property
    def is_open(self) -> bool:
        return self._ws is not None and self.opened_at is not None

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def age(self) -> float:
        return time.monotonic() - self.opened_at if self.opened_at is not None else 0.0

    def healthy(self) -> None:
        """The owner saw the connection work (a subscription confirmed): later drops start the
        backoff from the beginning again."""
        if not self._healthy:
            self._healthy = True
            self.backoff.reset()

    def send(self, body: dict) -> bool:
        """Send one JSON message, waiting for its slot under the message-rate limit. False when the
        link is not connected (the owner resends what it needs after the next `on_open`)."""
        payload = orjson.dumps(body).decode()
        with self._send_lock:
            wait = self._next_send - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            ws = self._ws
            if ws is None:
                return False
            try:
                ws.send(payload)
            except Exception as exc:  # the reader notices the broken connection and reconnects
                log.info("%s: send failed: %r", self.name, exc)
                return False
            finally:
                self._next_send = time.monotonic() + SEND_INTERVAL
        return True

    # -- the thread -------------------------------------------------------------------------------

    def _abort(self) -> None:
        ws = self._ws
        if ws is not None:
            try:
                ws.abort()
            except Exception:
                pass

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                url = self._url()
                ws = websocket.create_connection(
                    url, timeout=self.connect_timeout, enable_multithread=True, skip_utf8_validation=True
                )
            except Exception as exc:
                log.warning("%s: cannot connect: %s", self.name, _describe(exc))
                self._connect_failures.inc()
                self._stop.wait(self.backoff.next())
                continue
            self.connections += 1
            if self.connections > 1:
                self._reconnects.inc()
            self._open.inc()
            self._healthy = False
            ws.settimeout(READ_TIMEOUT)
            with self._send_lock:
                self._ws, self.opened_at = ws, time.monotonic()
            log.info("%s: connected (%s)", self.name, _safe_url(url))
            try:
                if not self._stop.is_set():
                    self._on_open(self)
                    self._read(ws)
            except Exception as exc:
                if not self._stop.is_set():
                    log.warning("%s: connection lost: %s", self.name, _describe(exc))
            finally:
                self._open.dec()
                with self._send_lock:
                    self._ws, self.opened_at = None, None
                if self._stop.is_set() and self._told_going_away is not ws:
                    _going_away(ws)  # connected just as stop() ran: it found no socket to tell
                try:
                    ws.close(timeout=0.2) if not self._stop.is_set() else ws.abort()
                except Exception:
                    pass
            planned = self._stop.is_set()
            try:
                self._on_close(self, planned)
            except Exception:
                log.exception("%s: on_close failed", self.name)
            if not planned:
                self._stop.wait(self.backoff.next())

    def _read(self, ws: websocket.WebSocket) -> None:
        last_frame = time.monotonic()
        while not self._stop.is_set():
            try:
                # control frames too, so pings count as signs of life (websocket-client answers them)
                opcode, frame = ws.recv_data_frame(True)
            except websocket.WebSocketTimeoutException:
                if time.monotonic() - last_frame > self.idle_timeout:
                    raise ConnectionError(f"nothing received for {self.idle_timeout:.0f} s") from None
                continue
            last_frame = time.monotonic()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raise ConnectionError(f"closed by the server {_close_reason(frame.data)}")
            if opcode not in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                continue
            try:
                message = orjson.loads(frame.data)
            except orjson.JSONDecodeError:
                log.warning("%s: undecodable message ignored", self.name)
                continue
            try:
                self._on_message(self, message)
            except Exception:  # one bad message must not cost the connection
                log.exception("%s: message handling failed", self.name)


def _close_reason(data: bytes) -> str:
    if len(data) >= 2:
        return f"({int.from_bytes(data[:2], 'big')} {data[2:].decode(errors='replace')})".strip()
    return "(no code)"


def _going_away(ws) -> None:
    """Tell the server we are leaving for good (1001), if the socket still takes a frame."""
    try:
        ws.send_close(websocket.STATUS_GOING_AWAY, b"relay stopping")
    except (websocket.WebSocketException, OSError):
        pass  # already gone: nothing to tell the server


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _safe_url(url: str) -> str:
    """Listen keys are credentials of a kind: never log them whole."""
    head, sep, tail = url.rpartition("/ws/")
    return f"{head}{sep}{tail[:4]}…" if sep and len(tail) > 20 else url


class Rotating(ABC):
    """The owner of one upstream connection that rotates make-before-break: `rotate()` opens a
    successor beside the active link, the owner `promote()`s it once it serves everything the active
    one did, and `stop()` closes both. Owners build their links in `_link()` (called here, so set what
    it needs first) and guard their own state with the same `lock`."""

    def __init__(self, name: str, logger: logging.Logger):
        self.name = name  # in log lines: "market-0", "user stream"
        self.log = logger
        self.lock = threading.RLock()
        self.closed = False
        self.active = self._link()
        self.successor: Link | None = None

    @abstractmethod
    def _link(self) -> Link:
        """A new, not yet started Link for this owner."""

    def rotate(self, reason: str) -> None:
        with self.lock:
            if self.closed or self.successor is not None:
                return
            self.log.info("%s: rotating the connection (%s)", self.name, reason)
            self.successor = self._link()
            self.successor.start()

    def promote(self) -> Link:
        """With `lock` held: the successor becomes the active link; the old one is stopped and returned."""
        assert self.successor is not None
        old, self.active, self.successor = self.active, self.successor, None
        old.stop()
        return old

    def stop(self) -> list[Link]:
        """Close for good: both links stopped (not joined), and returned."""
        with self.lock:
            self.closed = True
            links = [link for link in (self.active, self.successor) if link is not None]
        for link in links:
            link.stop()
        return links
