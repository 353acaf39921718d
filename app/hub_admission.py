"""Which WebSocket upgrades a web process lets in: capacity, the slots kept for tokens, per-address caps.

No I/O: counts of connections, anonymous connections and anonymous connections per address, kept
by `Admission` as the hub attaches and detaches connections.
"""

from __future__ import annotations

import weakref


class Admission:
    """MAX_WS_CONNECTIONS, WS_RESERVED_AUTHENTICATED and WS_MAX_CONNECTIONS_PER_IP for one process."""

    def __init__(self, settings, metrics):
        self.settings = settings
        self.connections: dict = {}  # connection → None
        self._admitted = weakref.WeakSet()  # requests let through, not yet connected
        self._anonymous = 0  # connected without a token (WS_RESERVED_AUTHENTICATED)
        self._anonymous_by_ip: dict[str, int] = {}  # the same, per client address (WS_MAX_CONNECTIONS_PER_IP)
        self._anonymous_ip: dict = {}  # connection → its address, while it holds such a slot
        self._connections, self._opened, self._refused = metrics.ws_connections, metrics.ws_opened, metrics.ws_refused

    def admit(self, request, ip: str, authenticated: bool) -> str | None:
        """Reserve a slot for a WebSocket upgrade, or say why not: "capacity" at MAX_WS_CONNECTIONS,
        "reserved" when only the WS_RESERVED_AUTHENTICATED slots are left and the upgrade carries no
        valid token, "address" at WS_MAX_CONNECTIONS_PER_IP sockets without a token from `ip`. A
        request that never becomes a connection (failed handshake) frees its slot when it is
        garbage-collected; admitted requests not yet connected are few, so they are counted here."""
        settings = self.settings
        if len(self.connections) + len(self._admitted) >= settings.max_ws_connections:
            self._refused.inc()
            return "capacity"
        if not authenticated:
            pending = [r for r in self._admitted if r.ctx.ws_anonymous]
            if self._anonymous + len(pending) >= settings.max_ws_connections - settings.ws_reserved_authenticated:
                self._refused.inc()
                return "reserved"
            from_ip = self._anonymous_by_ip.get(ip, 0) + sum(1 for r in pending if r.ctx.ws_ip == ip)
            if from_ip >= settings.ws_max_connections_per_ip:
                self._refused.inc()
                return "address"
        request.ctx.ws_ip, request.ctx.ws_anonymous = ip, not authenticated
        self._admitted.add(request)
        return None

    def attach(self, conn, request) -> None:
        self._admitted.discard(request)
        self.connections[conn] = None
        if getattr(request.ctx, "ws_anonymous", False):
            ip = self._anonymous_ip[conn] = request.ctx.ws_ip
            self._anonymous += 1
            self._anonymous_by_ip[ip] = self._anonymous_by_ip.get(ip, 0) + 1
        self._connections.inc()
        self._opened.inc()

    def authenticated(self, conn) -> None:
        """A connection without a token sent one: it leaves the anonymous share and its address's count."""
        ip = self._anonymous_ip.pop(conn, None)
        if ip is None:
            return
        self._anonymous -= 1
        left = self._anonymous_by_ip.get(ip, 1) - 1
        if left > 0:
            self._anonymous_by_ip[ip] = left
        else:
            self._anonymous_by_ip.pop(ip, None)

    def detach(self, conn) -> None:
        """Forget a connection (idempotent); its anonymous slot, if it held one, is free again."""
        if conn in self.connections:
            del self.connections[conn]
            self._connections.dec()
        self.authenticated(conn)
