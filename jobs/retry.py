"""The one retry policy of evfleet's Celery tasks. Every app's tasks take their options from here.

- ``TRANSIENT_ERRORS``: worth a retry - the database or the broker is briefly unreachable. Anything else is a
  bug and surfaces.
- ``RETRY_TASK_OPTIONS``: retries with growing, jittered delays (about 1, 2, 4, 8, 16 s, capped at 10 minutes).
- ``IDEMPOTENT_TASK_OPTIONS``: for tasks whose work is keyed (``jobs.runs.job_run``) or otherwise idempotent:
  also acknowledged late and redelivered when their worker is lost.
"""

from __future__ import annotations

from typing import Any

import kombu.exceptions
import redis.exceptions
from django.db import InterfaceError, OperationalError

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)

RETRY_TASK_OPTIONS: dict[str, Any] = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 5,
}

IDEMPOTENT_TASK_OPTIONS: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    **RETRY_TASK_OPTIONS,
}
