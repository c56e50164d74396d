"""Redis is not a single point of failure: with the cache's Redis stopped, the API answers, the rate limits and
sign-in throttling go on per process (config/cache.py), the outage shows in ``cache_status()``, and the shared
count resumes when Redis is back. On a private redis-server (``private_redis_cache``; the shared one is never
stopped)."""

from __future__ import annotations

import time

import pytest
import redis as redis_client
from django.core.cache import cache

from config import cache as failover
from tests.faults.services import PrivateRedis
from tests.hardening.conftest import token_headers
from tests.hardening.test_credentials import LOGIN_RATE, ask_for_token

pytestmark = pytest.mark.django_db


def status_of(redis: PrivateRedis) -> dict:
    (entry,) = [entry for entry in failover.cache_status() if entry["location"].endswith(f":{redis.port}/0")]
    return entry


def test_with_redis_away_the_api_answers_and_sign_in_is_still_throttled_per_process(world, client, private_redis_cache):
    assert ask_for_token(client, address="203.0.113.40").status_code == 400  # counted in Redis
    assert not status_of(private_redis_cache)["degraded"]

    private_redis_cache.stop()
    reads = [client.get("/api/v1/vehicles/", **token_headers(world["staff_token"])).status_code for _ in range(3)]
    guesses = [ask_for_token(client, address="203.0.113.41").status_code for _ in range(LOGIN_RATE + 2)]
    during = status_of(private_redis_cache)

    assert reads == [200, 200, 200]
    assert guesses == [400] * LOGIN_RATE + [429, 429]  # the fallback counts in this process's memory
    assert during["degraded"] and during["fallback_operations"] > 0 and "Connection" in during["last_error"]


def test_when_redis_is_back_the_shared_count_resumes(world, client, private_redis_cache, monkeypatch):
    monkeypatch.setattr(failover, "RETRY_AFTER_S", 0.2)
    private_redis_cache.stop()
    cache.set("probe", "memory")
    assert status_of(private_redis_cache)["degraded"]

    private_redis_cache.start()
    time.sleep(0.3)
    cache.set("probe", "redis")
    after = status_of(private_redis_cache)

    assert not after["degraded"]
    assert cache.get("probe") == "redis"
    assert redis_client.Redis.from_url(private_redis_cache.url).keys("*probe*")  # stored in Redis, not in memory
