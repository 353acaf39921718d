"""User data stream tasks (queue `default`): what the stream relay needs signed, answered to the
reply list it waits on, and beat's listen-key keepalive."""

from __future__ import annotations

from services.contract.tasks import TaskName
from workers.celery_app import app
from workers.resources import resources

from .base import SpotgateTask
from .replies import answer


@app.task(name=TaskName.STREAM_SIGNATURE, base=SpotgateTask)
def signature(reply_to: str) -> None:
    """Signed userDataStream.subscribe.signature params, incl. apiKey (ws-api mode)."""
    answer(reply_to, lambda: resources().user_stream.subscription_params())


@app.task(name=TaskName.STREAM_SESSION, base=SpotgateTask)
def session(reply_to: str) -> None:
    """{"method", "params"}: session.logon params for an Ed25519 key (the relay then sends
    userDataStream.subscribe), else userDataStream.subscribe.signature params (ws-api mode)."""
    answer(reply_to, lambda: resources().user_stream.session_request())


@app.task(name=TaskName.LISTEN_KEY, base=SpotgateTask)
def listen_key(reply_to: str) -> None:
    """{"listenKey"} to connect to (listen-key mode)."""
    answer(reply_to, lambda: resources().user_stream.open_listen_key())


@app.task(name=TaskName.LISTEN_KEY_KEEPALIVE, base=SpotgateTask)
def keepalive() -> bool:
    return resources().user_stream.keep_listen_key_alive()
