"""Server-time offset for SIGNED requests: Binance rejects timestamps ≥1 s ahead or older than
recvWindow (-1021), so we sign with our clock corrected by the offset measured from /api/v3/time."""

from __future__ import annotations

import time


class Clock:
    def __init__(self, offset_ms: float = 0.0):
        self.offset_ms = offset_ms
        self.synced_at: float | None = None

    def now_ms(self) -> int:
        return int(time.time() * 1000 + self.offset_ms)

    def update(self, server_time_ms: int, sent_at_ms: float, received_at_ms: float) -> float:
        """Offset from one /api/v3/time round trip, assuming the server stamped it mid-flight."""
        self.offset_ms = server_time_ms - (sent_at_ms + received_at_ms) / 2
        self.synced_at = time.time()
        return self.offset_ms
