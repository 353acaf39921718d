"""Who is calling: the client's address, as the proxies in front of the gateway report it.

Sanic fills `request.remote_addr` from `Forwarded`/`X-Forwarded-For` only when it is told how many
proxies to trust (`SANIC_PROXIES_COUNT`, e.g. 1 behind Heroku's router) or a `SANIC_FORWARDED_SECRET`;
otherwise the peer address is the client. Per-address limits (logins, WebSockets) key on this.
"""

from __future__ import annotations

from sanic import Request


def client_ip(request: Request) -> str:
    return request.remote_addr or request.ip or "-"
