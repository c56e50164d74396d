"""Crash safety of the batch upload against a real app server (gunicorn) and PostgreSQL.

A bus keeps uploading while the app server is SIGKILLed and restarted and, later, its database connections
are cut. It retries whatever did not get an answer. Afterwards every acknowledged reading is stored exactly
once, with the values sent, and nothing was reported as a conflict (no half-written batch).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from fleet.models import TelemetryReading
from fleet.telemetry.keys import vehicle_key_issue
from tests import factories as f
from tests.fleet.test_telemetry_support import BATCH_URL, readings

ROOT = Path(__file__).resolve().parents[2]
BATCHES = 60
BATCH_SIZE = 250


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class AppServer:
    def __init__(self, port: int, log_path: Path):
        self.port, self.log_path, self.process = port, log_path, None

    def start(self) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            # This test is about crashes, not rate limits: the vehicle's batch budget must never answer 429.
            "EVFLEET_API_RATE_TELEMETRY_BATCH": "100000/min",
        }
        log = open(self.log_path, "ab")  # noqa: SIM115 - the server owns it until killed
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "tests.fleet.test_telemetry_support:application",
                "--workers=2",
                f"--bind=127.0.0.1:{self.port}",
                "--timeout=30",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,  # its own process group: SIGKILL takes master and workers at once
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not start: {self.log_path.read_text()[-2000:]}")

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone (e.g. it failed to boot)
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def upload(port: int, key: str, body: bytes, failures: list) -> dict | None:
    """One attempt; the parsed answer, or None (and the failure noted) if there was no successful answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("POST", BATCH_URL, body, {"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
        response = conn.getresponse()
        payload = response.read()
        if response.status == 200:
            return json.loads(payload)
        failures.append(response.status)
    except (OSError, http.client.HTTPException) as exc:
        failures.append(type(exc).__name__)
    finally:
        conn.close()
    return None


def cut_database_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_acknowledged_readings_survive_server_kills_and_cut_connections(postgres, tmp_path):
    vehicle = f.VehicleFactory()
    _key, raw_key = vehicle_key_issue(vehicle=vehicle)
    start = timezone.now().replace(microsecond=0) - dt.timedelta(days=1)
    batches = [
        readings(start + dt.timedelta(seconds=n * BATCH_SIZE), BATCH_SIZE, soc_pct=round(20 + n * 0.5, 1))
        for n in range(BATCHES)
    ]
    server = AppServer(free_port(), tmp_path / "gunicorn.log")
    server.start()
    acknowledged: dict[str, float] = {}
    statuses_seen: set[str] = set()
    progress = threading.Event()
    done = threading.Event()
    sent = [0]
    failures: list = []

    give_up_at = time.monotonic() + 180

    def client():
        for batch in batches:
            body = json.dumps({"readings": batch}).encode()
            while (answer := upload(server.port, raw_key, body, failures)) is None:
                if time.monotonic() > give_up_at:
                    return  # the assertion on `done` reports it
                time.sleep(0.05)  # no answer: nothing is known, send it again
            statuses_seen.update(answer["statuses"])
            for item, status in zip(batch, answer["statuses"], strict=True):
                if status in ("created", "duplicate"):
                    acknowledged[item["recorded_at"]] = item["soc_pct"]
            sent[0] += 1
            progress.set()
        done.set()

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        while sent[0] < BATCHES // 4 and thread.is_alive():
            progress.wait(5)
        server.kill()  # most likely mid-request: the client keeps sending into the void
        time.sleep(0.3)
        server.start()
        while sent[0] < BATCHES // 2 and thread.is_alive():
            progress.wait(5)
        # Cut the server's database connections until one dies mid-request (between requests Django's health
        # check reconnects silently, which proves nothing).
        cut, deadline = 0, time.monotonic() + 10
        while 503 not in failures and not done.is_set() and time.monotonic() < deadline:
            cut += cut_database_connections()
            time.sleep(0.005)
        thread.join(timeout=120)
        assert done.is_set(), "the client did not finish"
    finally:
        server.kill()

    assert cut >= 1 and 503 in failures  # the chaos really happened ...
    # ... and was answered as "retry" (503) or not at all (refused, cut, or no answer in time on a loaded
    # machine: the client sends again), never with a 500.
    not_answered = {"ConnectionRefusedError", "ConnectionResetError", "RemoteDisconnected", "TimeoutError"}
    assert set(failures) <= {503, *not_answered}, failures
    assert "conflict" not in statuses_seen and "rejected" not in statuses_seen
    stored = dict(TelemetryReading.objects.filter(vehicle=vehicle).values_list("recorded_at", "soc_pct").iterator())
    assert len(acknowledged) == BATCHES * BATCH_SIZE  # every reading was acknowledged in the end ...
    assert len(stored) == len(acknowledged)  # ... and is stored once (the primary key forbids more)
    for recorded_at, soc_pct in acknowledged.items():
        assert stored[dt.datetime.fromisoformat(recorded_at)] == soc_pct
