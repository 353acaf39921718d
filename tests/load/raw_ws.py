"""A WebSocket client that sends whatever frames it is told to (RFC 6455 framing by hand): invalid
UTF-8 in a text frame, unmasked or fragmented frames, reserved opcodes, frames over any size limit —
what a well-behaved library refuses to produce, so the gateway's answer to them can be tested."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True, rsv: int = 0) -> bytes:
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    # XOR with the key repeated to the payload's length, in one int operation (fast for big payloads)
    key = (mask * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big") if n else b""
    return head + mask + body


class Closed(Exception):
    """The server closed the connection: `code` from its Close frame (None if the TCP connection just ended)."""

    def __init__(self, code: int | None, reason: str = ""):
        super().__init__(f"closed {code} {reason!r}")
        self.code, self.reason = code, reason


class RawClient:
    def __init__(self, host: str, port: int, path: str = "/ws", timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16))
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        if not lines[0].startswith("HTTP/1.1 101") or headers.get("sec-websocket-accept") != accept:
            raise ConnectionError(f"upgrade refused: {lines[0]}")
        self.close_code: int | None = None

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise Closed(None)
        self.buffer += data

    def send_raw(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed first; what it said is read by recv()

    def send_text(self, text: str | bytes) -> None:
        self.send_raw(frame(TEXT, text.encode() if isinstance(text, str) else text))

    def send_json(self, message) -> None:
        self.send_text(json.dumps(message))

    def recv_frame(self, timeout: float = 10.0) -> tuple[int, bytes]:
        """The next data frame (opcode, payload); answers pings; raises Closed on a Close frame."""
        deadline = time.monotonic() + timeout
        while True:
            parsed = self._parse()
            if parsed is not None:
                opcode, payload = parsed
                if opcode == PING:
                    self.send_raw(frame(PONG, payload))
                    continue
                if opcode == CLOSE:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                    self.close_code = code
                    self.send_raw(frame(CLOSE, payload[:2]))
                    raise Closed(code, payload[2:].decode(errors="replace"))
                return opcode, payload
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame from the server")
            self.sock.settimeout(left)
            try:
                self._fill()
            except ConnectionResetError:
                raise Closed(None) from None

    def recv_json(self, timeout: float = 10.0) -> dict:
        opcode, payload = self.recv_frame(timeout)
        assert opcode == TEXT, f"the server sent opcode {opcode}"
        return json.loads(payload)

    def wait_closed(self, timeout: float = 10.0) -> int | None:
        """Read until the server closes; returns its close code (None: TCP closed without one)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.recv_frame(max(0.01, deadline - time.monotonic()))
        except Closed as closed:
            return closed.code

    def _parse(self) -> tuple[int, bytes] | None:
        b = self.buffer
        if len(b) < 2:
            return None
        n, start = b[1] & 0x7F, 2
        if n == 126:
            if len(b) < 4:
                return None
            n, start = struct.unpack_from("!H", b, 2)[0], 4
        elif n == 127:
            if len(b) < 10:
                return None
            n, start = struct.unpack_from("!Q", b, 2)[0], 10
        if len(b) < start + n:
            return None
        self.buffer = b[start + n :]
        return b[0] & 0x0F, b[start : start + n]

    def close(self) -> None:
        try:
            self.send_raw(frame(CLOSE, struct.pack("!H", 1000)))
        finally:
            self.sock.close()
