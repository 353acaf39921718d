"""What services/ refuses, as one tree; app/errors.py maps it onto HTTP once (`from_service`).

    ServiceError(message)                         something a caller asked for is refused; never a bug
    ├── InvalidInput(field, message)              400 INVALID_PARAMETER: the input's shape is wrong
    │   ├── OrderInvalid(field, message, rule)    an order (services/filters.py); with `rule` (a filter,
    │   │                                         the symbol's status or order types) 400 FILTER_FAILURE
    │   └── LimitsInvalid(field, message)         a risk-limits body (services/risk.py)
    └── ClientOrderIdInUse(client_order_id, holder)  409 CLIENT_ORDER_ID_IN_USE (services/jobs.py)

Not in the tree, on purpose:
- Binance's answers are binance_client's own tree (`binance_client.errors`: it says whether an order
  may have reached Binance); `services.outcomes.error_from_binance` is their one mapping, and a
  failure stored in a job or a reply is the dict `services.outcomes.failure` builds.
- `services.placement.PlacementPending` and `LockLost` are a task run's control flow ("run again
  later", "another run owns the job"): they never leave the worker.
- Redis errors stay redis-py's: the web tier answers any of them 503 REDIS_UNAVAILABLE.

`InvalidInput` is a ValueError too, so code that validates with `except ValueError` keeps working.
"""

from __future__ import annotations


class ServiceError(Exception):
    code = "BAD_REQUEST"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(ServiceError, ValueError):
    """A field of the input is wrong; `message` says what a client must change."""

    code = "INVALID_PARAMETER"

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class OrderInvalid(InvalidInput):
    """An order refused by its shape, or (with `rule`) by a rule of its symbol."""

    def __init__(self, field: str, message: str, rule: str | None = None):
        super().__init__(field, message)
        self.rule = rule


class LimitsInvalid(InvalidInput):
    """A risk-limits body refused."""


class ClientOrderIdInUse(ServiceError):
    """Another job already uses this clientOrderId (`holder` is its id)."""

    code = "CLIENT_ORDER_ID_IN_USE"

    def __init__(self, client_order_id: str, holder: str):
        super().__init__(f"clientOrderId '{client_order_id}' is already used by another order")
        self.client_order_id = client_order_id
        self.holder = holder
