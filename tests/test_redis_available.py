"""The Redis that `make test` provisions is reachable and usable."""

import redis


def test_redis_round_trips_a_key_under_the_run_prefix(redis_url, redis_prefix):
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=5, decode_responses=True)
    try:
        key = f"{redis_prefix}probe"
        assert client.set(key, "ok", ex=60)
        assert client.get(key) == "ok"
    finally:
        client.close()
