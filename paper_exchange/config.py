"""The paper exchange's own settings, read from PAPER_* environment variables and the command line.

It deliberately does not use spotgate's config/: the paper exchange is an independent stand-in for
Binance and imports nothing of the product.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

# Binance's own documented HMAC example pair (rest-api.md, "SIGNED endpoint examples"): a demo
# credential that is obviously not a secret, for the default paper account.
DEMO_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DEMO_API_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DEMO_BALANCES = "USDT:10000,BTC:1,ETH:10,BNB:10"
# API keys of the same demo account for an RSA and an Ed25519 public key: Binance's own documented
# example API keys (rest-api.md, "SIGNED Endpoint Examples"), as obviously not secret as the pair
# above. The public keys are files (`python -m paper_exchange.demo_keys`, run by `make`, makes demo ones).
DEMO_RSA_API_KEY = "CAvIjXy3F44yW6Pou5k8Dy1swsYDWJZLeoK2r8G4cFDnE9nosRppc2eKc1T8TRTQ"
DEMO_ED25519_API_KEY = "4yNzx3yWC5bS6YTwEkSRaC0nRmSQIIStAUOh1b6kqaBrTLIhjCpI5lJH8q8R8WNO"
DEMO_KEY_DIR = Path(".run") / "demo-keys"


def parse_balances(text: str) -> dict[str, Decimal]:
    """`USDT:10000,BTC:1` → {"USDT": Decimal("10000"), "BTC": Decimal("1")}."""
    balances: dict[str, Decimal] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        asset, sep, amount = item.partition(":")
        try:
            value = Decimal(amount)
        except InvalidOperation:
            value = Decimal(-1)
        if not sep or not asset.strip() or value < 0:
            raise ValueError(f"PAPER_BALANCES: expected ASSET:AMOUNT pairs, got {item!r}")
        balances[asset.strip().upper()] = value
    return balances


def _int(env, name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}: expected an integer, got {raw!r}") from None


def _key_file(env, name: str, demo: str) -> str | None:
    """The variable's file (which must then exist), else the demo key `make` made, if it did."""
    value = env.get(name)
    if value:
        if not Path(value).is_file():
            raise ValueError(f"{name}: no such file {value!r}")
        return value
    default = DEMO_KEY_DIR / demo
    return str(default) if default.is_file() else None


@dataclass(frozen=True)
class PaperConfig:
    host: str = "127.0.0.1"
    port: int = 8900
    seed: int = 0
    api_key: str = DEMO_API_KEY
    api_secret: str = field(default=DEMO_API_SECRET, repr=False)
    balances: dict[str, Decimal] = field(default_factory=lambda: parse_balances(DEMO_BALANCES))
    weight_limit: int = 6000  # REQUEST_WEIGHT per minute per IP
    orders_per_10s: int = 100  # ORDERS per 10 seconds per account
    orders_per_day: int = 200_000  # ORDERS per day per account
    ban_after: int = 5  # requests refused with 429 in one window before a 418 ban
    ban_seconds: int = 120
    listen_key_ttl: int = 3600  # seconds a listen key lives without a keepalive
    step_ms: int = 250  # how often the simulated market moves
    history_minutes: int = 1440  # simulated trade history created at start
    rsa_api_key: str = DEMO_RSA_API_KEY
    rsa_public_key_file: str | None = None  # None: no RSA key registered
    ed25519_api_key: str = DEMO_ED25519_API_KEY
    ed25519_public_key_file: str | None = None

    @classmethod
    def from_env(cls, env=None, **overrides) -> PaperConfig:
        env = os.environ if env is None else env
        values = dict(
            seed=_int(env, "PAPER_SEED", 0),
            api_key=env.get("PAPER_API_KEY") or DEMO_API_KEY,
            api_secret=env.get("PAPER_API_SECRET") or DEMO_API_SECRET,
            balances=parse_balances(env.get("PAPER_BALANCES") or DEMO_BALANCES),
            weight_limit=_int(env, "PAPER_WEIGHT_LIMIT", 6000),
            orders_per_10s=_int(env, "PAPER_ORDERS_10S", 100),
            orders_per_day=_int(env, "PAPER_ORDERS_1D", 200_000),
            ban_after=_int(env, "PAPER_BAN_AFTER", 5),
            ban_seconds=_int(env, "PAPER_BAN_SECONDS", 120),
            listen_key_ttl=_int(env, "PAPER_LISTEN_KEY_TTL", 3600),
            step_ms=_int(env, "PAPER_STEP_MS", 250),
            history_minutes=_int(env, "PAPER_HISTORY_MINUTES", 1440),
            rsa_api_key=env.get("PAPER_RSA_API_KEY") or DEMO_RSA_API_KEY,
            rsa_public_key_file=_key_file(env, "PAPER_RSA_PUBLIC_KEY_FILE", "rsa-public.pem"),
            ed25519_api_key=env.get("PAPER_ED25519_API_KEY") or DEMO_ED25519_API_KEY,
            ed25519_public_key_file=_key_file(env, "PAPER_ED25519_PUBLIC_KEY_FILE", "ed25519-public.pem"),
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
