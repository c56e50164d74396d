"""Shared fixtures. Services (PostgreSQL, Redis) are *required* when EVFLEET_REQUIRE_SERVICES=1 (CI):
a test that needs one then fails instead of skipping. On a bare machine those tests skip and say why.

Imports of Django stay inside fixtures: the pure-core tests (optimizer, forecast) also run without Django.
"""

from __future__ import annotations

import os

import pytest

SERVICES_REQUIRED = os.environ.get("EVFLEET_REQUIRE_SERVICES") == "1"


def _missing_service(reason: str):
    if SERVICES_REQUIRED:
        pytest.fail(f"{reason} (EVFLEET_REQUIRE_SERVICES=1: services are required here)", pytrace=False)
    pytest.skip(f"{reason}: run .ci/run or set DATABASE_URL / REDIS_URL to include this test")


def pytest_configure(config):
    # The production password hasher costs ~0.5 s a user by design; tests create many users.
    try:
        from django.conf import settings

        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        # The API rate limits (config/rate_limits.py) would answer 429 to tests that send many requests with one
        # credential (the schema fuzzer sends ~1,200): out of the way here; tests/hardening/test_rate_limit.py
        # lowers them where it tests them. The login rate stays as configured (its tests count on it).
        settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].update(
            user="1000000/min", vehicle="1000000/min", telemetry_batch="1000000/min"
        )
    except Exception:  # Django not configured (pure-core run with -p no:django)
        pass


def pytest_report_header(config):
    try:
        from django.conf import settings

        engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        redis = settings.REDIS_URL or "not configured (tasks eager)"
    except Exception:  # Django not configured: pure-core run
        return "evfleet: Django not configured (pure-core tests only)"
    return f"evfleet: database={engine}, redis={redis}, services required={SERVICES_REQUIRED}"


@pytest.fixture
def postgres(db):
    """Skip (or fail in CI) unless the test database is PostgreSQL."""
    from django.db import connection

    if connection.vendor != "postgresql":
        _missing_service("needs PostgreSQL as the database")
    return connection


@pytest.fixture
def redis_url():
    """A reachable Redis URL, or skip (fail in CI)."""
    from django.conf import settings

    if not settings.REDIS_URL:
        _missing_service("needs Redis (REDIS_URL is not set)")
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
    except redis.exceptions.RedisError as exc:
        _missing_service(f"needs Redis at {settings.REDIS_URL}: {exc}")
    return settings.REDIS_URL


@pytest.fixture
def private_redis():
    """A redis-server of this test's own on a free port (``tests.faults.services.PrivateRedis``), free to stop and
    start; removed afterwards. The shared Redis is never stopped."""
    import shutil

    if not shutil.which("redis-server"):
        _missing_service("needs redis-server on PATH (a private Redis is started and stopped)")
    from tests.faults.services import PrivateRedis

    redis = PrivateRedis()
    redis.start()
    yield redis
    redis.destroy()


@pytest.fixture
def private_redis_cache(private_redis, settings):
    """The cache on ``private_redis``, through the failover backend as in production (``config.cache``)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "config.cache.FailoverRedisCache",
            "LOCATION": private_redis.url,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 1.0},
        }
    }
    return private_redis


@pytest.fixture
def private_broker(private_redis):
    """Celery's broker is ``private_redis`` (on a queue of the test's own, tasks not eager) for this test; the
    app's broker, queue and the outbox's memory of a broker outage are restored afterwards. What is queued can
    be read and run in-process (``tests.support.broker.PrivateBroker``)."""
    import kombu.pools

    from config.celery import app
    from jobs import outbox
    from tests.support.broker import PrivateBroker

    def use_broker(url: str) -> None:
        # Celery keeps one connection pool per app, made from broker_url on first use: drop it to switch brokers.
        # The pools live in kombu's process-wide registry (keyed by connection): closing one by hand left a closed
        # pool registered for the shared broker, and every later test in this process failed on "Acquire on
        # closed pool". ``kombu.pools.reset`` closes them and empties the registry.
        app.conf.broker_url = url
        kombu.pools.reset()
        app._pool = None
        app.amqp._producer_pool = None

    def forget_outage() -> None:
        outbox._BROKER.retry_at = 0.0
        outbox._BROKER.down_since = None

    broker = PrivateBroker(private_redis)
    previous = (app.conf.broker_url, app.conf.task_default_queue, app.conf.task_always_eager)
    app.conf.task_default_queue = broker.queue
    app.conf.task_always_eager = False
    use_broker(broker.url)
    forget_outage()
    yield broker
    use_broker(previous[0])
    app.conf.task_default_queue, app.conf.task_always_eager = previous[1], previous[2]
    forget_outage()


@pytest.fixture(autouse=True)
def _fresh_cache(request):
    # The locmem/Redis cache outlives a test's database transaction: clear it so tests stay independent.
    if "django_db_setup" in request.fixturenames or request.node.get_closest_marker("django_db"):
        from django.core.cache import cache

        cache.clear()
    yield


@pytest.fixture
def eager_tasks():
    """Celery tasks run where they are sent, in-process, even where CI sets REDIS_URL: for tests of what a task
    does. The worker's round trip through Redis is tested with the jobs (tests/test_jobs_celery.py)."""
    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def two_depots(db):
    """Two depots of one organisation, each with its own staff member, manager and a vehicle.

    The common arrangement for isolation tests: whatever belongs to depot B must be invisible and
    unchangeable for depot A's people.
    """
    from tests import factories as f

    org = f.OrganizationFactory()
    depot_a = f.DepotFactory(organization=org, name="Hermosillo", code="hmo")
    depot_b = f.DepotFactory(organization=org, name="Nogales", code="nog")
    world = {
        "org": org,
        "depot_a": depot_a,
        "depot_b": depot_b,
        "staff_a": f.UserFactory(username="staff_a"),
        "manager_a": f.UserFactory(username="manager_a"),
        "staff_b": f.UserFactory(username="staff_b"),
        "vehicle_a": f.VehicleFactory(organization=org, home_depot=depot_a),
        "vehicle_b": f.VehicleFactory(organization=org, home_depot=depot_b),
    }
    f.MembershipFactory(user=world["staff_a"], depot=depot_a, role="staff")
    f.MembershipFactory(user=world["manager_a"], depot=depot_a, role="manager")
    f.MembershipFactory(user=world["staff_b"], depot=depot_b, role="staff")
    return world
