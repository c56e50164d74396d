"""Faults on the MQTT path: the bridge SIGKILLed mid-stream and restarted, then the broker restarted.

A bus keeps publishing batches (QoS 1, persistent session, re-sending what the broker did not acknowledge)
while ``manage.py mqtt_ingest`` runs as a real process against a private Mosquitto and PostgreSQL. Afterwards
every reading is stored exactly once, with the values sent: QoS 1 redelivery of what the bridge had not
acknowledged, and the idempotent ingest for what it had committed but not yet acknowledged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
from django.db import connection
from django.utils import timezone

from fleet.models import TelemetryReading
from fleet.telemetry.broker_auth import admin_connection, broker_setup, key_username, telemetry_topic
from fleet.telemetry.keys import vehicle_key_issue
from tests import factories as f
from tests.fleet.test_mqtt_support import ADMIN_USERNAME, BRIDGE_USERNAME, PrivateBroker, VehicleClient
from tests.fleet.test_telemetry_support import readings

ROOT = Path(__file__).resolve().parents[2]
BATCHES = 60
BATCH_SIZE = 200
TOTAL = BATCHES * BATCH_SIZE


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class BridgeProcess:
    def __init__(self, broker: PrivateBroker, log_path: Path) -> None:
        self.broker, self.log_path = broker, log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.starts_seen = 0

    def start(self) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "EVFLEET_MQTT_USERNAME": BRIDGE_USERNAME,
            "EVFLEET_MQTT_PASSWORD": self.broker.bridge_password,
        }
        log = open(self.log_path, "ab")  # noqa: SIM115 - the process owns it until killed
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "mqtt_ingest", "--broker", self.broker.url, "--client-id", "fault-bridge"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            if self.log_path.read_text(errors="replace").count("mqtt_ingest: subscribed") >= self.starts_seen + 1:
                self.starts_seen += 1
                return
            time.sleep(0.1)
        raise RuntimeError(f"mqtt_ingest did not subscribe: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


def stored_count(vehicle_id: int) -> int:
    return TelemetryReading.objects.filter(vehicle_id=vehicle_id).count()


def wait_until(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_no_reading_lost_or_doubled_when_the_bridge_is_killed_and_the_broker_restarts(postgres, tmp_path, settings):
    broker = PrivateBroker(tmp_path)
    broker.start()
    settings.EVFLEET_MQTT_BROKER_URL = broker.url
    settings.EVFLEET_MQTT_DYNSEC = True
    settings.EVFLEET_MQTT_ADMIN_USERNAME = ADMIN_USERNAME
    settings.EVFLEET_MQTT_ADMIN_PASSWORD = broker.admin_password
    with admin_connection() as admin:
        broker_setup(admin, bridge_username=BRIDGE_USERNAME, bridge_password=broker.bridge_password)
    vehicle = f.VehicleFactory()
    key, raw_key = vehicle_key_issue(vehicle=vehicle)
    start = timezone.now().replace(microsecond=0) - dt.timedelta(days=1)
    batches = [
        readings(start + dt.timedelta(seconds=n * BATCH_SIZE), BATCH_SIZE, soc_pct=round(20 + n * 0.5, 1))
        for n in range(BATCHES)
    ]
    sent = {item["recorded_at"]: item["soc_pct"] for batch in batches for item in batch}
    bridge = BridgeProcess(broker, tmp_path / "mqtt_ingest.log")
    bridge.start()
    published = [0]
    resends = [0]
    done = threading.Event()
    broker_stopped = threading.Event()
    give_up_at = time.monotonic() + 150

    def bus() -> None:
        with VehicleClient(
            broker, username=key_username(key), password=raw_key, client_id="bus-under-test", clean_session=False
        ) as client:
            for number, batch in enumerate(batches):
                if number == BATCHES * 3 // 4:
                    broker_stopped.wait(120)  # the last quarter goes out while the broker is down
                payload = orjson.dumps({"readings": batch})
                while time.monotonic() < give_up_at:
                    client.wait_connected(5)
                    info = client.client.publish(telemetry_topic(vehicle.pk), payload, qos=1)
                    with contextlib.suppress(RuntimeError, ValueError):
                        info.wait_for_publish(3)
                    if info.is_published():
                        break
                    resends[0] += 1  # no PUBACK: nothing is known, send it again
                published[0] += 1
                time.sleep(0.1)  # a bus's pace: the stream goes on while the bridge restarts
        done.set()

    thread = threading.Thread(target=bus, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: stored_count(vehicle.pk) >= TOTAL // 4, 60), "no progress before the kill"
        bridge.kill()  # most likely mid-message: it had uncommitted or unacknowledged batches
        stored_at_kill, published_at_kill = stored_count(vehicle.pk), published[0]
        time.sleep(0.5)
        bridge.start()
        assert wait_until(lambda: stored_count(vehicle.pk) >= TOTAL // 2, 60), "no progress after the restart"
        broker.stop()  # SIGTERM: the broker saves its sessions and queued messages, then exits
        stored_at_broker_stop, published_at_broker_stop = stored_count(vehicle.pk), published[0]
        broker_stopped.set()
        time.sleep(0.5)
        broker.start()
        thread.join(timeout=max(1.0, give_up_at - time.monotonic()))
        assert done.is_set(), f"the bus did not finish ({published[0]} of {BATCHES} batches published)"
        assert wait_until(lambda: stored_count(vehicle.pk) >= TOTAL, 60), f"{stored_count(vehicle.pk)} of {TOTAL}"
        time.sleep(1.0)  # anything still queued would land now: the count must stay exact
    finally:
        bridge.kill()
        broker.stop()

    # Both faults struck mid-stream: the bus was still publishing and the bridge had not stored everything.
    assert published_at_kill < BATCHES and published_at_broker_stop < BATCHES, (
        published_at_kill,
        published_at_broker_stop,
    )
    assert stored_at_kill < TOTAL and stored_at_broker_stop < TOTAL
    stored = dict(TelemetryReading.objects.filter(vehicle=vehicle).values_list("recorded_at", "soc_pct").iterator())
    assert len(stored) == TOTAL == len(sent)  # 0 lost, 0 extra (the primary key forbids doubles)
    for recorded_at, soc_pct in sent.items():
        assert stored[dt.datetime.fromisoformat(recorded_at)] == soc_pct
