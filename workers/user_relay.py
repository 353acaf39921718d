"""The user data stream: one upstream connection kept subscribed, its events into Redis.

    WorkerCalls      what needs the API secret is done by a worker: a Celery task answers to a reply
                     list this process BLPOPs (the relay never holds the secret)
    UserEvents       an event → Redis Stream + `md:user` (+ `md:orders` and the job's orderUpdate for
                     executionReports); events seen twice (two connections while rotating) count once
    WsApiUserStream  USER_STREAM_MODE=ws-api: a WebSocket API connection subscribed with
                     `session.logon` + `userDataStream.subscribe` (Ed25519 keys) or
                     `userDataStream.subscribe.signature` (HMAC, RSA), again after every reconnect and
                     eventStreamTerminated
    ListenKeyStream  USER_STREAM_MODE=listen-key: `/ws/<listenKey>`, a new key on listenKeyExpired

Both rotate make-before-break (24 h, serverShutdown): a successor connection subscribes, then
replaces the old one. A drop publishes `status: reconnecting` on `user` and `orders`, and `restored`
once a connection is subscribed again. Events sent while no connection was up are not replayed by
Binance; clients reconcile with the REST order and account reads.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import threading
from abc import abstractmethod
from collections import OrderedDict

import orjson

from services.contract.channels import ORDERS, USER
from services.contract.keys import Keys
from services.contract.replies import Replies, new_reply_to
from services.contract.tasks import TaskName
from services.jobs import JobStore
from services.metrics import metrics

from .channels import order_from_report
from .stream_bus import StreamBus, now_ms
from .upstream_ws import Backoff, Link, Rotating

log = logging.getLogger("spotgate.stream.user")
SEEN_EVENTS = 2_000


class WorkerError(Exception):
    """No worker answered, or it answered with an error."""


class WorkerCalls:
    def __init__(self, celery, redis, prefix: str, timeout: float):
        self.celery, self.keys, self.timeout = celery, Keys(prefix), timeout
        self.replies = Replies(redis)

    def call(self, task: str, *args):
        reply_to = new_reply_to(self.keys)
        self.celery.send_task(task, args=[reply_to, *args], queue="default")
        reply = self.replies.wait(reply_to, timeout=self.timeout)
        if reply is None:
            raise WorkerError(f"no worker answered {task} within {self.timeout:.0f} s")
        if not reply["ok"]:
            raise WorkerError(f"{task} failed: {reply['error'].get('message')} {reply['error'].get('details')}")
        return reply["data"]


class UserEvents:
    def __init__(self, bus: StreamBus, jobs: JobStore):
        self.bus, self.jobs = bus, jobs
        m = metrics()
        self._messages, self._lag = m.stream_messages.labels("user"), m.stream_lag.labels("user")
        self.seen: OrderedDict[bytes, None] = OrderedDict()
        self.lock = threading.Lock()

    def handle(self, event: dict) -> None:
        self._messages.inc()
        event_time = event.get("E")
        if isinstance(event_time, int):
            self._lag.observe(max(0, now_ms() - event_time) / 1000)
        digest = hashlib.blake2b(orjson.dumps(event, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()
        with self.lock:  # two connections while rotating: publish in arrival order, each event once
            if digest in self.seen:
                return
            self.seen[digest] = None
            if len(self.seen) > SEEN_EVENTS:
                self.seen.popitem(last=False)
            self.bus.user_event(event)
            if event.get("e") == "executionReport":
                order = order_from_report(event)
                self.jobs.record_order_update(order["clientOrderId"], order)


class UserStream(Rotating):
    """What both modes share: the active link (and a successor while rotating), status, rotation."""

    mode = ""

    def __init__(self, settings, bus: StreamBus, worker: WorkerCalls, events: UserEvents):
        self.settings, self.bus, self.worker, self.events = settings, bus, worker, events
        self.link_ids = itertools.count(1)
        self.subscribed: set[Link] = set()
        self.interrupted = False
        super().__init__("user stream", log)

    def _link(self) -> Link:
        return Link(
            f"user-{self.mode}.{next(self.link_ids)}",
            self.url,
            on_open=self.on_open,
            on_message=self.on_message,
            on_close=self._on_close,
            backoff=Backoff(self.settings.stream_reconnect_base, self.settings.stream_reconnect_max),
        )

    # -- mode specifics ----------------------------------------------------------------------------

    @abstractmethod
    def url(self) -> str:
        """Mode-specific (ws-api or listen-key)."""

    @abstractmethod
    def on_open(self, link: Link) -> None:
        """Mode-specific (ws-api or listen-key)."""

    @abstractmethod
    def on_message(self, link: Link, message) -> None:
        """Mode-specific (ws-api or listen-key)."""

    # -- shared ------------------------------------------------------------------------------------

    def start(self) -> None:
        self.active.start()

    def stop(self) -> list[Link]:
        links = super().stop()
        for link in links:
            link.join(2)
        return links

    def tick(self) -> None:
        with self.lock:
            due = (
                self.successor is None
                and self.active in self.subscribed
                and self.active.age() >= self.settings.stream_rotate_after
            )
        if due:
            self.rotate("lifetime")

    def subscribed_on(self, link: Link) -> None:
        """`link` now delivers the account's events."""
        link.healthy()
        restored = False
        with self.lock:
            self.subscribed.add(link)
            if link is self.successor:
                self.subscribed.discard(self.promote())
            if link is self.active and self.interrupted:
                self.interrupted, restored = False, True
        if restored:
            log.info("user stream restored")
            self.bus.status((USER, ORDERS), "restored")

    def _unsubscribed(self, link: Link) -> None:
        """`link` is up but no longer delivers events (the venue ended the subscription)."""
        with self.lock:
            self.subscribed.discard(link)
            lost = link is self.active and not self.interrupted
            self.interrupted = self.interrupted or lost
        if lost:
            self.bus.status((USER, ORDERS), "reconnecting")

    def _on_close(self, link: Link, planned: bool) -> None:
        lost = False
        with self.lock:
            self.subscribed.discard(link)
            if planned or self.closed or link is not self.active:
                return
            if self.successor is not None:
                self.promote()  # `link` is the active one: stopped, the successor serves
            if self.active not in self.subscribed and not self.interrupted:
                self.interrupted = lost = True
        if lost:
            log.warning("user stream lost: reconnecting")
            self.bus.status((USER, ORDERS), "reconnecting")

    def describe(self) -> dict:
        with self.lock:
            return {
                "mode": self.mode,
                "subscribed": self.active in self.subscribed,
                "ageSeconds": round(self.active.age(), 1),
                "rotating": self.successor is not None,
            }


class WsApiUserStream(UserStream):
    """On every new connection (first, and after each reconnect), a worker says how to subscribe
    (`user_stream.session`): with an Ed25519 key `session.logon` with params it signed, then
    `userDataStream.subscribe` on the logged-on session; with another key type
    `userDataStream.subscribe.signature`. The relay never holds the key."""

    mode = "ws-api"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.request_ids = itertools.count(1)
        self.pending: dict[Link, tuple[str, int]] = {}  # link -> (method, request id) awaiting a reply
        self.subscription: dict[Link, int] = {}
        self.auth: str | None = None  # how the last subscription was made

    def url(self) -> str:
        return self.settings.binance_ws_api_url

    def on_open(self, link: Link) -> None:
        self._subscribe(link)

    def _send(self, link: Link, method: str, params: dict | None = None) -> None:
        request_id = next(self.request_ids)
        self.pending[link] = (method, request_id)
        link.send({"id": request_id, "method": method, **({"params": params} if params is not None else {})})

    def _subscribe(self, link: Link) -> None:
        # signed by a worker and used at once: the timestamp is only good for recvWindow
        first = self.worker.call(TaskName.STREAM_SESSION)
        self.auth = first["method"]
        self._send(link, first["method"], first["params"])

    def on_message(self, link: Link, message) -> None:
        if not isinstance(message, dict):
            return
        event = message.get("event")
        if isinstance(event, dict):
            if "subscriptionId" not in message:
                if event.get("e") == "serverShutdown":
                    self.rotate("serverShutdown")
                return
            if event.get("e") == "eventStreamTerminated":
                if self.subscription.get(link) == message["subscriptionId"]:
                    log.warning("user stream: subscription terminated upstream, subscribing again")
                    self._unsubscribed(link)
                    try:
                        self._subscribe(link)  # a fresh logon too: the session may have ended with it
                    except Exception as exc:
                        log.error("user stream: cannot subscribe again (%s): reconnecting", exc)
                        link.drop()
                return
            self.events.handle(event)
            return
        waiting = self.pending.get(link)
        if waiting is None or message.get("id") != waiting[1]:
            return
        method = waiting[0]
        del self.pending[link]
        if message.get("status") != 200:
            log.error("user stream: %s refused: %s", method, message.get("error"))
            link.drop()  # try again after the link's backoff
        elif method == "session.logon":
            self._send(link, "userDataStream.subscribe")
        else:
            self.subscription[link] = message["result"]["subscriptionId"]
            self.subscribed_on(link)

    def describe(self) -> dict:
        return {**super().describe(), "auth": self.auth}


class ListenKeyStream(UserStream):
    mode = "listen-key"

    def url(self) -> str:
        # a key per connection: creating one while another is active returns (and extends) that one
        key = self.worker.call(TaskName.LISTEN_KEY)["listenKey"]
        return f"{self.settings.binance_stream_url}/ws/{key}"

    def on_open(self, link: Link) -> None:
        self.subscribed_on(link)

    def on_message(self, link: Link, message) -> None:
        if not isinstance(message, dict):
            return
        if "stream" in message and "data" in message:  # combined form, should a venue wrap them
            message = message["data"]
        kind = message.get("e")
        if kind == "listenKeyExpired":
            log.warning("user stream: listen key expired, getting a new one")
            link.backoff.reset()
            link.drop()
        elif kind == "serverShutdown":
            self.rotate("serverShutdown")
        elif kind:
            self.events.handle(message)


def user_stream_for(settings, *args) -> UserStream:
    return (ListenKeyStream if settings.user_stream_mode == "listen-key" else WsApiUserStream)(settings, *args)
