"""Per-client upstream weight: how much of the shared weight budget one client may cause per minute.

Every call that reaches Binance on a client's behalf — a market-data cache miss, a signed read, the
reads behind positions — is charged its Binance weight to that client: the token subject, or the IP
address for requests without a token. Over CLIENT_WEIGHT_PER_MINUTE in a calendar minute the request is
refused with 429 CLIENT_WEIGHT_LIMIT and Retry-After, before anything is spent from the shared budget,
so one viewer token cannot spend what every other client (and the order path) shares. Answers served
from a cache cost nothing.

The request being served is kept in a context variable (set by request middleware), so the charge
is made where the weight is known (app/upstream.py, app/dispatch.py) without threading the request
through every call.

    P quota:weight:<client>:<minute>   weight charged to one client in one calendar minute (expires)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar

from sanic import Request, Sanic

from services.keys import part

from .clients import client_ip
from .errors import TooManyRequests

current_request: ContextVar[Request | None] = ContextVar("spotgate_request", default=None)

CHARGE = """
local used = redis.call('INCRBY', KEYS[1], ARGV[1])
if used == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], 120) end
if used > tonumber(ARGV[2]) and ARGV[3] ~= '1' then
  redis.call('DECRBY', KEYS[1], ARGV[1])
  return {0, used - tonumber(ARGV[1])}
end
return {1, used}
"""


def client_of(request: Request) -> str:
    """Who a request is charged to: its token's subject, else its IP address."""
    principal = getattr(request.ctx, "principal", None)
    if principal is not None:
        return f"sub:{principal.sub}"
    return f"ip:{client_ip(request)}"


class ClientQuotas:
    def __init__(self, redis, prefix: str, per_minute: int, clock: Callable[[], float] = time.time):
        self.prefix = prefix
        self.per_minute = per_minute
        self.clock = clock  # seconds since the epoch: the calendar minute a charge counts in
        self._charge = redis.register_script(CHARGE)

    def key(self, client: str, minute: int) -> str:
        return f"{self.prefix}quota:weight:{part(client)}:{minute}"

    async def charge(self, request: Request, weight: int, overdraft: bool = False) -> None:
        """Count `weight` against the request's client, or raise 429 CLIENT_WEIGHT_LIMIT. With
        `overdraft` (weight already spent, known only afterwards) it is counted and never refused."""
        now = self.clock()
        allowed, used = await self._charge(
            keys=[self.key(client_of(request), int(now // 60))],
            args=[weight, self.per_minute, "1" if overdraft else "0"],
        )
        if not int(allowed):
            raise TooManyRequests(
                f"This client may cause at most {self.per_minute} upstream request weight a minute",
                code="CLIENT_WEIGHT_LIMIT",
                retry_after=60 - now % 60,
                details={"limit": self.per_minute, "usedWeight": int(used), "weight": weight},
            )

    async def charge_current(self, weight: int, overdraft: bool = False) -> None:
        """Charge the request being served (nothing outside a request: the process's own calls)."""
        request = current_request.get()
        if request is not None:
            await self.charge(request, weight, overdraft)


def setup_quotas(app: Sanic) -> None:
    @app.on_request(priority=1000)
    async def remember_request(request: Request):
        current_request.set(request)
