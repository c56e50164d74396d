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
def eager_replans(eager_tasks):
    """Re-plans run where they are requested (no Celery worker in tests): the real task, in-process."""


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


class TcpProxy:
    """A TCP relay to PostgreSQL that the test can cut: the database "goes away" for the process behind it only."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.loop = asyncio.new_event_loop()
        self.writers: set[asyncio.StreamWriter] = set()
        self.down = False
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(5)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self.writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
            self.writers.discard(writer)

    def cut(self) -> None:
        def _cut() -> None:
            self.down = True
            for writer in list(self.writers):
                writer.transport.abort()

        self.loop.call_soon_threadsafe(_cut)

    def restore(self) -> None:
        self.loop.call_soon_threadsafe(setattr, self, "down", False)

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CentralSystemProcess:
    """``manage.py run_csms`` as a real process on the test database (optionally through a ``TcpProxy``)."""

    def __init__(self, port: int, db_port: int | None = None) -> None:
        self.port, self.db_port = port, db_port
        self.process = None

    def start(self) -> CentralSystemProcess:
        import os
        import subprocess
        import sys

        from django.db import connection

        db = connection.settings_dict
        host_port = f"127.0.0.1:{self.db_port or db['PORT'] or 5432}"
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}@{host_port}/{db['NAME']}",
            "DB_CONN_MAX_AGE": "0",
        }
        import tempfile

        self.log = tempfile.NamedTemporaryFile("w+", prefix="csms-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "run_csms", "--port", str(self.port)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while "listening" not in self.output():
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.1)
        return self

    def output(self) -> str:
        with open(self.log.name) as log:
            return log.read()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    def kill(self) -> None:
        import signal

        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except Exception:
                self.kill()
