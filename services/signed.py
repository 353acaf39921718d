"""Signed calls other than placing orders (reads and cancels), with the shared weight budget, clock
resync on -1021, and a few retries where repeating the call is harmless — none started after the
caller's deadline (the web request waiting for it has given up by then)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from binance_client import BinanceClient
from binance_client.budget import READ, WeightBudget
from binance_client.endpoints import Request
from binance_client.errors import (
    ClockSkewError,
    RateLimitedError,
    RejectedError,
    TimeoutError_,
    UnavailableError,
    UnknownOutcomeError,
)

from .contract.replies import past


@dataclass
class SignedCaller:
    client: BinanceClient
    budget: WeightBudget
    attempts: int = 3

    def call(self, request: Request, priority: str = READ, deadline_ms: int | None = None):
        """Send `request`, reserving its weight at `priority` (budget.READ / ORDER / CANCEL).

        No attempt starts once `deadline_ms` (epoch ms) has passed: then the unknown outcome of an
        earlier attempt is raised, or TimeoutError_ when nothing may have been executed."""
        delay = 0.2
        last: Exception | None = None
        for attempt in range(self.attempts):
            if past(deadline_ms):
                if last is not None:
                    raise last
                raise TimeoutError_("the caller's deadline passed before the call could start")
            self.budget.spend(request.reserved_weight, priority)
            try:
                response = self.client.send(request)
            except ClockSkewError:
                self.client.sync_time()  # refused: nothing was done
                continue
            except RateLimitedError as exc:
                self.budget.pause(exc.retry_after or 1, exc.http_status)
                raise
            except RejectedError as exc:
                # refused: Binance charged it (a failed cancel too, though a successful one is free)
                self.budget.observe(exc.rate_limits.used_weight_1m)
                raise
            except (UnknownOutcomeError, UnavailableError) as exc:
                if attempt == self.attempts - 1:
                    raise
                if isinstance(exc, UnknownOutcomeError):
                    last = exc
                time.sleep(delay)
                delay *= 2
                continue
            self.budget.observe(response.rate_limits.used_weight_1m)
            return response.data
        raise UnknownOutcomeError("no answer after retries")
