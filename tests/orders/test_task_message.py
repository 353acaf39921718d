"""The web tier's hand-built task message (services.contract.tasks.task_message) is what kombu itself puts
on the queue for `send_task(..., ignore_result=True)`, so a worker reads it as its own; a Celery or
kombu upgrade that changes the format fails here before it strands orders in a queue."""

from __future__ import annotations

import base64
import json

import pytest
import redis
from celery import Celery

from config import Settings
from services.contract.keys import Keys
from services.contract.tasks import REQUEST_ID_HEADER, task_message
from workers.celery_app import celery_config

VARYING = {
    ("headers", "id"),
    ("headers", "root_id"),
    ("headers", "origin"),
    ("properties", "correlation_id"),
    ("properties", "delivery_tag"),
    ("properties", "reply_to"),
}


def shape(message: dict) -> dict:
    """The message with its per-message values (ids, origin) blanked and the body decoded."""
    out = {k: v for k, v in message.items() if k != "body"}
    for part, key in VARYING:
        out[part] = {**out[part], key: "*"}
    out["body"] = json.loads(base64.b64decode(message["body"]))
    return out


@pytest.mark.integration
def test_task_message_matches_what_kombu_publishes(redis_url, redis_prefix):
    settings = Settings.from_env({"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": f"{redis_prefix}tm:"})
    app = Celery("spotgate-test")
    app.config_from_object(celery_config(settings))
    client = redis.Redis.from_url(redis_url)
    key = Keys(settings.redis_key_prefix).queue("orders")
    try:
        app.send_task(
            "orders.place", args=("job-1",), queue="orders", ignore_result=True, headers={REQUEST_ID_HEADER: "req-42"}
        )
        client.lpush(key, task_message("orders.place", ("job-1",), "orders", headers={REQUEST_ID_HEADER: "req-42"}))
        ours, kombus = (json.loads(raw) for raw in client.lrange(key, 0, -1))  # LPUSH: newest first
        assert shape(ours) == shape(kombus)
        client.delete(key)
        # keyword arguments (a signed call's deadline) travel the same way
        app.send_task(
            "orders.cancel", args=("reply", "BTCUSDT", 1), kwargs={"deadline": 17}, queue="orders", ignore_result=True
        )
        client.lpush(key, task_message("orders.cancel", ("reply", "BTCUSDT", 1), "orders", kwargs={"deadline": 17}))
        with_kwargs, kombus_kwargs = (json.loads(raw) for raw in client.lrange(key, 0, -1))
        assert shape(with_kwargs) == shape(kombus_kwargs)
        assert shape(with_kwargs)["body"][1] == {"deadline": 17}
        headers, properties = ours["headers"], ours["properties"]
        assert headers["id"] == headers["root_id"] == properties["correlation_id"]
        assert properties["delivery_tag"] != kombus["properties"]["delivery_tag"]
        assert headers[REQUEST_ID_HEADER] == "req-42"  # the web request's id travels with the task
    finally:
        client.delete(key)
        client.close()
        app.close()
