"""The worker's part of the user data stream: what needs the API key or secret, so the stream relay
never holds the secret.

- `subscription_params()`: signed params for `userDataStream.subscribe.signature` on the WebSocket
  API (apiKey, timestamp, signature over the params sorted by name, by the key's type), to be used at once.
- `session_request()`: how the relay should subscribe: with an Ed25519 key `session.logon` (the same
  signed params) and then `userDataStream.subscribe` on the logged-on session; with HMAC or RSA keys
  (which session.logon does not take) `userDataStream.subscribe.signature`.
- Listen keys (`listen-key` mode, for venues that still have them): `open_listen_key()` creates (or,
  while one is active, extends and returns) the account's key and keeps it in Redis so that beat's
  `keep_listen_key_alive()` can refresh it every LISTEN_KEY_KEEPALIVE seconds.

Keys (under the settings' prefix): `user-stream:listen-key` — the current listen key (it expires
with Binance's 60 minutes when nobody keeps it alive).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from redis import Redis

from binance_client import BinanceClient, endpoints
from binance_client.budget import ORDER, WeightBudget
from binance_client.errors import BinanceError
from binance_client.signing import KeyType, Signer, ws_api_params

log = logging.getLogger("spotgate.user_stream")
LISTEN_KEY_TTL = 3600  # Binance drops a listen key 60 minutes after its last keepalive
INVALID_LISTEN_KEY = -1125
SESSION_LOGON = "session.logon"
SUBSCRIBE_SIGNATURE = "userDataStream.subscribe.signature"


@dataclass
class UserStreamKeys:
    client: BinanceClient
    api_key: str
    signer: Signer = field(repr=False)
    budget: WeightBudget
    redis: Redis
    prefix: str

    @property
    def listen_key_slot(self) -> str:
        return f"{self.prefix}user-stream:listen-key"

    def subscription_params(self) -> dict:
        """Signed params for userDataStream.subscribe.signature, stamped with the server-synced clock."""
        return ws_api_params({}, self.api_key, self.signer, self.client.clock.now_ms())

    def session_request(self) -> dict:
        """{"method", "params"}: the first request the relay sends on a new WebSocket API connection."""
        method = SESSION_LOGON if self.signer.key_type is KeyType.ED25519 else SUBSCRIBE_SIGNATURE
        return {"method": method, "params": self.subscription_params()}

    def open_listen_key(self) -> dict:
        """POST /api/v3/userDataStream → {"listenKey"}; the key is kept for the keepalive."""
        key = self._call(endpoints.listen_key_create())["listenKey"]
        self.redis.set(self.listen_key_slot, key, ex=LISTEN_KEY_TTL)
        return {"listenKey": key}

    def keep_listen_key_alive(self) -> bool:
        """PUT the current listen key; False when there is none (or Binance no longer knows it)."""
        raw = self.redis.get(self.listen_key_slot)
        if raw is None:
            return False
        key = raw.decode() if isinstance(raw, bytes) else raw
        try:
            self._call(endpoints.listen_key_keepalive(key))
        except BinanceError as exc:
            if exc.code != INVALID_LISTEN_KEY:
                raise
            # expired already: the relay sees listenKeyExpired and asks for a new key
            log.warning("listen key expired before its keepalive")
            self.redis.delete(self.listen_key_slot)
            return False
        self.redis.expire(self.listen_key_slot, LISTEN_KEY_TTL)
        return True

    def _call(self, request):
        # the account's events are how order states reach clients: not starved by market data
        self.budget.spend(request.weight, ORDER)
        response = self.client.send(request)
        self.budget.observe(response.rate_limits.used_weight_1m)
        return response.data
