"""A lean WebSocket load client for bench/ws_fanout.py: many sockets in one process, cheap per frame.

The load generator shares the machine with the server it measures, so its cost per received frame
is part of every latency it reports. The `websockets` library spends ~30 µs of Python per frame
(its protocol machinery, a task per socket, `async for`); this client is an asyncio Protocol per
socket under uvloop that does only what a receiving client must: the RFC 6455 handshake (checked),
unmasked server frames parsed from the byte stream (fragmented and split frames included), pings
answered with masked pongs, and one `orjson.loads` per text frame for its publish timestamp.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
import time

import orjson

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame (clients must mask, RFC 6455 5.3); control payloads are ≤ 125 bytes."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


class Socket(asyncio.Protocol):
    """One client connection: handshake, then frames. `on_text(payload, received_ns)` per message."""

    def __init__(self, host: str, port: int, path: str, on_text, on_close):
        self.key = base64.b64encode(os.urandom(16))
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {self.key.decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.on_text, self.on_close = on_text, on_close
        self.opened = asyncio.get_running_loop().create_future()
        self.buffer = bytearray()
        self.upgraded = False
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        buffer = self.buffer
        buffer += data
        if not self.upgraded and not self._handshake():
            return
        while True:
            size = len(buffer)
            if size < 2:
                return
            length = buffer[1] & 0x7F
            start = 2
            if length == 126:
                if size < 4:
                    return
                length, start = struct.unpack_from("!H", buffer, 2)[0], 4
            elif length == 127:
                if size < 10:
                    return
                length, start = struct.unpack_from("!Q", buffer, 2)[0], 10
            end = start + length
            if size < end:
                return
            opcode = buffer[0] & 0x0F
            payload = bytes(buffer[start:end])
            del buffer[:end]
            if opcode == TEXT:
                self.on_text(payload, now)
            elif opcode == PING:
                self.transport.write(masked_frame(PONG, payload))
            elif opcode == CLOSE:
                self.transport.write(masked_frame(CLOSE, payload[:2]))
                self.transport.close()
                return

    def _handshake(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        del self.buffer[: end + 4]
        accept = base64.b64encode(hashlib.sha1(self.key + GUID).digest()).decode()
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
        if not head[0].startswith("HTTP/1.1 101") or headers.get("sec-websocket-accept") != accept:
            self.opened.set_exception(ConnectionError(f"upgrade refused: {head[0]}"))
            self.transport.close()
            return False
        self.upgraded = True
        self.opened.set_result(None)
        return True

    def connection_lost(self, exc) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed during the handshake: {exc!r}"))
        self.on_close()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(masked_frame(CLOSE, struct.pack("!H", 1000)))
            self.transport.close()


class Fleet:
    """`count` sockets to one URL path, recording the publish→receive latency of each trade message.

    `greetings`: the frames each socket must get before it counts as ready (the gateway's welcome and
    subscribed; the bare baseline sends none)."""

    def __init__(self, host: str, port: int, path: str, greetings: int = 0):
        self.host, self.port, self.path = host, port, path
        self.greetings = greetings
        self.sockets: list[Socket] = []
        self.latencies: list[int] = []  # ns, receive − the payload's data.sentAt
        self.greeted = 0  # frames of other kinds (welcome, subscribed)
        self.closed = 0
        self._ready: asyncio.Future | None = None
        self._expected = 0

    def _text(self, payload: bytes, now: int) -> None:
        message = orjson.loads(payload)
        if message.get("type") == "trade":
            self.latencies.append(now - message["data"]["sentAt"])
            return
        self.greeted += 1
        if self._ready is not None and self.greeted >= self._expected and not self._ready.done():
            self._ready.set_result(None)

    def _closed(self) -> None:
        self.closed += 1

    async def open(self, count: int, batch: int = 100, timeout: float = 60.0) -> None:
        """Connect `count` sockets (`batch` handshakes at a time) and wait for their greetings."""
        loop = asyncio.get_running_loop()
        self._expected = count * self.greetings
        self._ready = loop.create_future()
        if self.greeted >= self._expected:
            self._ready.set_result(None)
        for first in range(0, count, batch):
            made = [
                Socket(self.host, self.port, self.path, self._text, self._closed)
                for _ in range(min(batch, count - first))
            ]
            await asyncio.gather(*(loop.create_connection(lambda s=s: s, self.host, self.port) for s in made))
            await asyncio.wait_for(asyncio.gather(*(s.opened for s in made)), timeout)
            self.sockets.extend(made)
        await asyncio.wait_for(self._ready, timeout)

    def close(self) -> None:
        for s in self.sockets:
            s.close()
