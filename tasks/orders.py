"""Order tasks (queue `orders`): place a job's order exactly once; cancel orders."""

from __future__ import annotations

from services.contract.tasks import TaskName
from services.placement import PlacementPending
from workers.celery_app import app
from workers.resources import resources

from .base import SpotgateTask
from .replies import answer


@app.task(name=TaskName.PLACE, base=SpotgateTask, bind=True, max_retries=None)
def place(self, job_id: str) -> None:
    try:
        resources().placer.place(job_id)
    except PlacementPending as exc:
        # still unknown after a full run, or another run holds the job: come back (the job stays
        # `running`, never lost)
        countdown = exc.retry_in if exc.retry_in is not None else min(30, 2 ** min(self.request.retries, 5))
        raise self.retry(exc=exc, countdown=countdown) from exc


@app.task(name=TaskName.CANCEL, base=SpotgateTask)
def cancel(
    reply_to: str,
    symbol: str,
    order_id: int | None = None,
    client_order_id: str | None = None,
    deadline: int | None = None,
) -> None:
    """Cancel one order; not started once `deadline` (epoch ms) has passed (tasks/replies.py)."""
    answer(
        reply_to,
        lambda: resources().orders.cancel(symbol, order_id, client_order_id, deadline),
        deadline,
        TaskName.CANCEL,
    )


@app.task(name=TaskName.CANCEL_ALL, base=SpotgateTask)
def cancel_all(reply_to: str, symbol: str, deadline: int | None = None) -> None:
    answer(reply_to, lambda: resources().orders.cancel_all(symbol, deadline), deadline, TaskName.CANCEL_ALL)


@app.task(name=TaskName.CANCEL_EVERYTHING, base=SpotgateTask)
def cancel_everything(reply_to: str) -> None:
    """The kill switch: cancel every open order on every symbol, answer the orders canceled. It has no
    deadline (canceling is always wanted while the switch is engaged), so it runs even when late."""
    answer(reply_to, lambda: resources().orders.cancel_everything(), None, TaskName.CANCEL_EVERYTHING)
