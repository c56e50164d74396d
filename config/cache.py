"""The default cache in production: Redis, failing open to a per-process memory cache while Redis is away.

The cache holds the API rate-limit and sign-in counts (config/rate_limits.py, config/throttling.py) and the
re-plan coalescing markers (charging/tasks.py). None of that is worth an outage of the API: when Redis does not
answer (stopped, restarting, unreachable), every cache operation goes to a local-memory cache of this process
instead, logged once per outage. Counts then hold per process (sign-in throttling keeps working in each
gunicorn worker, with a budget per worker), and Redis is tried again every ``RETRY_AFTER_S`` seconds; when it
answers, the shared counts resume (what was counted meanwhile in memory is not carried over).

``cache_status()`` says whether a fallback is in use, for a health check.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 2.0
T = TypeVar("T")


class _Outage:
    """Process-wide state of one Redis location (Django makes a cache object per thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down_since: float | None = None  # time.time() of the first failure of the current outage
        self.retry_at = 0.0  # time.monotonic() before which Redis is not tried
        self.fallback_operations = 0
        self.outages = 0
        self.last_error = ""


_OUTAGES: dict[str, _Outage] = {}
_OUTAGES_LOCK = threading.Lock()


def _outage_for(location: str) -> _Outage:
    with _OUTAGES_LOCK:
        return _OUTAGES.setdefault(location, _Outage())


def cache_status() -> list[dict[str, Any]]:
    """One entry per Redis cache of this process: ``degraded`` while its memory fallback is in use."""
    with _OUTAGES_LOCK:
        items = list(_OUTAGES.items())
    return [
        {
            "location": location.split("@")[-1],  # no password in a health report
            "degraded": state.down_since is not None,
            "down_since": state.down_since,
            "fallback_operations": state.fallback_operations,
            "outages": state.outages,
            "last_error": state.last_error,
        }
        for location, state in items
    ]


class FailoverRedisCache(RedisCache):
    """Django's ``RedisCache`` whose operations fall back to a per-process ``LocMemCache`` on Redis errors."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        location = server if isinstance(server, str) else ",".join(server)
        self._outage = _outage_for(location)
        # LocMemCache instances of one name share their storage: one fallback per process, whatever the thread.
        self._fallback = LocMemCache(f"evfleet-redis-fallback:{location}", {**params, "OPTIONS": {}})

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        state = self._outage
        if state.down_since is not None and time.monotonic() < state.retry_at:
            return self._on_fallback(name, *args, **kwargs)
        primary: Callable[..., Any] = getattr(super(), name)
        try:
            result = primary(*args, **kwargs)
        except redis.exceptions.ConnectionError:
            # A pooled connection from before a Redis restart fails once, then reconnects: one more try.
            try:
                result = primary(*args, **kwargs)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                return self._failed(exc, name, *args, **kwargs)
        except redis.exceptions.TimeoutError as exc:
            return self._failed(exc, name, *args, **kwargs)
        if state.down_since is not None:
            with state.lock:
                if state.down_since is not None:
                    logger.warning(
                        "Redis cache is back after %.0f s; shared counts resume.", time.time() - state.down_since
                    )
                    state.down_since = None
        return result

    def _failed(self, exc: Exception, name: str, *args: Any, **kwargs: Any) -> Any:
        state = self._outage
        with state.lock:
            state.retry_at = time.monotonic() + RETRY_AFTER_S
            state.last_error = f"{type(exc).__name__}: {exc}"
            if state.down_since is None:
                state.down_since = time.time()
                state.outages += 1
                logger.error(
                    "Redis cache unavailable (%s); rate limits and caching fall back to this process's memory.",
                    state.last_error,
                )
        return self._on_fallback(name, *args, **kwargs)

    def _on_fallback(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self._outage.fallback_operations += 1
        return getattr(self._fallback, name)(*args, **kwargs)

    # Every public operation goes through _call (decr and the async variants are built on these).
    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("add", key, value, timeout=timeout, version=version)

    def get(self, key, default=None, version=None):
        return self._call("get", key, default=default, version=version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set", key, value, timeout=timeout, version=version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("touch", key, timeout=timeout, version=version)

    def delete(self, key, version=None):
        return self._call("delete", key, version=version)

    def get_many(self, keys, version=None):
        return self._call("get_many", keys, version=version)

    def has_key(self, key, version=None):
        return self._call("has_key", key, version=version)

    def incr(self, key, delta=1, version=None):
        return self._call("incr", key, delta=delta, version=version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set_many", data, timeout=timeout, version=version)

    def delete_many(self, keys, version=None):
        return self._call("delete_many", keys, version=version)

    def clear(self):
        return self._call("clear")
