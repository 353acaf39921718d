"""Rate-limit state Binance reports on every answer (`X-MBX-USED-WEIGHT-*`, `X-MBX-ORDER-COUNT-*`,
`Retry-After`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RateLimitInfo:
    used_weight: dict[str, int] = field(default_factory=dict)  # interval ("1M") -> weight used
    order_count: dict[str, int] = field(default_factory=dict)  # interval ("10S", "1D") -> orders
    retry_after: float | None = None

    @property
    def used_weight_1m(self) -> int | None:
        return self.used_weight.get("1M")

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimitInfo:
        weight: dict[str, int] = {}
        orders: dict[str, int] = {}
        retry_after = None
        for name, value in headers.items():
            lower = name.lower()
            try:
                if lower.startswith("x-mbx-used-weight-"):
                    weight[lower.rsplit("-", 1)[1].upper()] = int(value)
                elif lower.startswith("x-mbx-order-count-"):
                    orders[lower.rsplit("-", 1)[1].upper()] = int(value)
                elif lower == "retry-after":
                    retry_after = float(value)
            except ValueError:
                continue  # a malformed header is ignored, never fatal
        return cls(weight, orders, retry_after)
