"""Placing an order exactly once (design.md, data flow 3).

An order's outcome is UNKNOWN after a timeout, a 5xx, -1006/-1007 or a connection lost after sending.
Then, and whenever a previous attempt of the same job may have reached Binance (a retried or
redelivered task), the order is looked up by its client order id before anything is resent, and a
resend uses the SAME client id, so Binance itself refuses a double ("Duplicate order sent.", which
means: look it up). Definitive rejections are never retried; -1021 resyncs the clock and retries;
429/418 pause every process until Retry-After has passed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from redis.exceptions import LockError

from binance_client import BinanceClient, endpoints
from binance_client.budget import WeightBudget
from binance_client.errors import (AuthError, BinanceError, ClockSkewError, NotFoundError, OrderRejectedError,
                                   RateLimitedError, UnavailableError, UnknownOutcomeError)

from .jobs import FAILED, FINAL, RUNNING, SUCCEEDED, JobStore, now_ms
from .outcomes import error_from_binance, failure
from .pacing import OrderPacer
from .risk import RiskStore, kill_switch_refusal

log = logging.getLogger("spotgate.placement")
DUPLICATE = "Duplicate order sent."
RENEW_AFTER = 1.0  # seconds: how stale a job lock's renewal may be before a step that can block


class PlacementPending(Exception):
    """The job cannot be finished by this run: try it again in `retry_in` seconds (None: back off)."""

    def __init__(self, job_id: str, retry_in: float | None = None):
        super().__init__(job_id)
        self.job_id = job_id
        self.retry_in = retry_in


class LockLost(Exception):
    """This run no longer holds its job's lock: another run may own the job now, so send nothing."""


@dataclass
class Placer:
    client: BinanceClient
    jobs: JobStore
    pacer: OrderPacer
    budget: WeightBudget
    risk: RiskStore
    run_seconds: float = 60.0       # how long one task run keeps trying before handing back
    max_backoff: float = 5.0
    # A run holds its job's lock for this long after each renewal. It renews (when the last renewal
    # is over RENEW_AFTER old) before every call to Binance and while it waits, so the lock only
    # lapses when the run is dead: it must outlast the longest single step (one HTTP call: connect +
    # read timeouts) plus RENEW_AFTER, and no more, since it is how long a killed worker's job waits
    # before its redelivered task may take it over.
    lock_seconds: float = 25.0

    def place(self, job_id: str) -> dict | None:
        """Drive a job to a final state; raises PlacementPending to be retried later."""
        # One run per job at a time: two live runs could each look the order up, find nothing and
        # both send it. A run that finds the lock held comes back when it may have lapsed (its
        # holder may be dead: a SIGKILLed worker's task is redelivered while its lock still stands).
        lock = self.jobs.redis.lock(f"{self.jobs.prefix}job-lock:{job_id}", timeout=self.lock_seconds,
                                    blocking=False)
        locked_at = time.monotonic()
        if not lock.acquire():
            job = self.jobs.get(job_id)
            if job is None or job["status"] in FINAL:
                return job
            remaining_ms = self.jobs.redis.pttl(lock.name)
            raise PlacementPending(job_id, retry_in=max(0.5, remaining_ms / 1000 + 0.2))
        try:
            return self._place(job_id, lock, locked_at)
        except LockLost:
            log.warning("job %s: lock lost mid-run; leaving the job to its new holder", job_id)
            raise PlacementPending(job_id, retry_in=self.lock_seconds) from None
        finally:
            try:
                lock.release()
            except LockError:
                pass  # it lapsed: someone else's now, not ours to delete

    def _place(self, job_id: str, lock, locked_at: float) -> dict | None:
        job = self.jobs.get(job_id)
        if job is None or job["status"] in FINAL:
            return job
        if job.get("executeAt") and job["executeAt"] > now_ms():
            return job  # released by maintenance.release_due_orders when due
        may_exist = job["attempts"] > 0  # an earlier run may have reached Binance
        job = self.jobs.update(job_id, current=job, status=RUNNING, attempts=job["attempts"] + 1)
        if job is None or job["status"] in FINAL:
            return job
        request, client_id = job["request"], job["clientOrderId"]
        if not may_exist:
            refusal = self.risk.refusal(request, self._count_open)
            if refusal is not None:
                return self.jobs.update(job_id, current=job, status=FAILED, error=refusal)
        deadline = time.monotonic() + self.run_seconds
        backoff = 0.1
        renewed_at = locked_at

        def keep(seconds: float = 0.0) -> None:
            """Renew the lock, sleeping `seconds` (capped at the deadline) in renewed slices."""
            nonlocal renewed_at
            end = min(time.monotonic() + seconds, deadline)
            while True:
                if time.monotonic() - renewed_at >= RENEW_AFTER:
                    renewed_at = time.monotonic()
                    try:
                        lock.reacquire()
                    except LockError:
                        raise LockLost() from None
                left = end - time.monotonic()
                if left <= 0:
                    return
                time.sleep(min(left, RENEW_AFTER))

        while time.monotonic() < deadline:
            try:
                if may_exist:
                    keep()
                    found = self._lookup(request["symbol"], client_id)
                    if found is not None:
                        return self._succeed(job, found)
                if not self.pacer.take(deadline, keep):
                    break
                # again after the pacing wait: a kill switch engaged meanwhile stops this order
                halted = kill_switch_refusal(self.risk.kill_switch())
                if halted is not None:
                    return self.jobs.update(job_id, current=job, status=FAILED, error=halted)
                self._spend(1)
                keep()
                order = self.client.call(endpoints.new_order(
                    request["symbol"], request["side"], request["type"], quantity=request.get("quantity"),
                    quote_order_qty=request.get("quoteOrderQty"), price=request.get("price"),
                    stop_price=request.get("stopPrice"), time_in_force=request.get("timeInForce"),
                    new_client_order_id=client_id, new_order_resp_type="FULL"))
                return self._succeed(job, order)
            except OrderRejectedError as exc:
                if exc.msg == DUPLICATE:
                    may_exist = True
                    continue
                return self.jobs.update(job_id, current=job, status=FAILED, error=error_from_binance(exc))
            except ClockSkewError:
                # -1021 means it was refused: nothing was placed. Resync, then try again.
                try:
                    self.client.sync_time()
                except BinanceError as exc:
                    log.warning("job %s: clock resync failed (%s)", job_id, exc)
                    keep(backoff)
                    backoff = min(self.max_backoff, backoff * 2)
            except RateLimitedError as exc:
                wait = exc.retry_after or 1.0
                self.budget.pause(wait, exc.http_status)
                keep(wait)
            except AuthError as exc:
                return self.jobs.update(job_id, current=job, status=FAILED, error=error_from_binance(exc))
            except UnknownOutcomeError as exc:
                log.warning("job %s: outcome unknown (%s); looking %s up before any resend", job_id, exc, client_id)
                may_exist = True
                keep(backoff)
                backoff = min(self.max_backoff, backoff * 2)
            except UnavailableError:
                keep(backoff)  # nothing was sent
                backoff = min(self.max_backoff, backoff * 2)
            except BinanceError as exc:
                return self.jobs.update(job_id, current=job, status=FAILED, error=error_from_binance(exc))
            except BudgetSpent as exc:
                keep(exc.retry_after)
        raise PlacementPending(job_id)

    def _lookup(self, symbol: str, client_id: str) -> dict | None:
        self._spend(4)
        try:
            return self.client.call(endpoints.get_order(symbol, orig_client_order_id=client_id))
        except NotFoundError:
            return None

    def _count_open(self) -> int:
        self._spend(80)
        return len(self.client.call(endpoints.open_orders()))

    def _spend(self, weight: int) -> None:
        verdict = self.budget.reserve(weight)
        if not verdict.allowed:
            raise BudgetSpent(verdict.retry_after)

    def _succeed(self, job: dict, order: dict) -> dict | None:
        self.risk.note_order(order)
        return self.jobs.update(job["id"], current=job, status=SUCCEEDED, order=order, error=None)


class BudgetSpent(Exception):
    def __init__(self, retry_after: float):
        super().__init__(f"weight budget spent for {retry_after:.1f} s")
        self.retry_after = retry_after


__all__ = ["Placer", "PlacementPending", "failure"]
