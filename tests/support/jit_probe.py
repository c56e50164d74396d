"""A Celery app module for tests (``celery -A tests.support.jit_probe worker``): the project's app, imported the way
``-A config`` imports it, with one more task that reports what a worker's database connection uses, so that a test
can ask a real worker process (tests/test_db_jit.py)."""

from __future__ import annotations

import os

from config.celery import app

__all__ = ["app", "report_jit"]


@app.task(name="tests.support.jit_probe.report_jit")
def report_jit(key: str) -> None:
    """Store ``<EVFLEET_PROCESS_ROLE>:<SHOW jit>`` of this worker's connection in Redis under ``key``."""
    import redis
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        (jit,) = cursor.fetchone()
    redis.Redis.from_url(settings.REDIS_URL).set(key, f"{os.environ.get('EVFLEET_PROCESS_ROLE')}:{jit}", ex=300)
