"""The central system on a free loopback port in a background thread, and simulated chargers to talk to it.

The server runs outside the test's transaction (its own threads and connections): tests use ``transactional_db``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
import zoneinfo

import pytest
from django.db import connections

from csms.server import CentralSystem


class RunningCentralSystem:
    def __init__(self) -> None:
        self.central = CentralSystem("127.0.0.1", 0)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.central.run(ready=lambda port: self.ready.set()))
        connections.close_all()

    def start(self) -> RunningCentralSystem:
        self.thread.start()
        assert self.ready.wait(15), "the central system did not start"
        return self

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.central.bound_port}/ocpp"

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.central.stop)
        self.thread.join(15)


@pytest.fixture
def csms(transactional_db):
    running = RunningCentralSystem().start()
    yield running
    running.stop()


@pytest.fixture
def eager_replans():
    """Re-plans run where they are requested (no Celery worker in tests): the real task, in-process."""
    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def night_time_zone() -> str:
    """A fixed-offset zone where it is 23:00-24:00 now, so tonight's plan and sessions fall in the night."""
    now = dt.datetime.now(dt.UTC)
    east = (23 - now.hour) % 24
    east = east - 24 if east > 12 else east
    name = f"Etc/GMT{-east:+d}" if east else "Etc/UTC"
    zoneinfo.ZoneInfo(name)
    return name


class SimulatorLoop:
    """Simulated chargers live on their own event loop thread, so they answer the central system while the test
    thread checks the database; ``run(coro)`` runs one of their steps and returns its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def sims():
    loop = SimulatorLoop()
    yield loop
    loop.close()


def eventually(predicate, timeout: float = 20.0, every: float = 0.05):
    """Poll ``predicate()`` (in the test thread) until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {predicate.__doc__ or predicate}")
        time.sleep(every)
