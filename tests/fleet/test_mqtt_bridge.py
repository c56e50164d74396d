"""MQTT input end to end: a private Mosquitto with dynamic security, the bridge, PostgreSQL.

Vehicles log in with their evfleet key, publish the HTTP batch body to their own topic and read the per-item
answer on the result topic; the broker refuses everything else; bad input is answered and never stops the
bridge.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
import time
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from fleet.models import TelemetryReading, VehicleApiKey, VehicleLiveState
from fleet.telemetry.broker_auth import (
    admin_connection,
    broker_setup,
    key_username,
    result_topic,
    telemetry_topic,
)
from fleet.telemetry.keys import vehicle_key_issue, vehicle_key_revoke, vehicle_key_rotate
from fleet.telemetry.mqtt import TelemetryBridge
from tests import factories as f
from tests.fleet.test_mqtt_support import (
    ADMIN_USERNAME,
    BRIDGE_USERNAME,
    PrivateBroker,
    VehicleClient,
    connect_reason,
)
from tests.fleet.test_telemetry_support import reading, readings

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

TESTER = "tester"
TESTER_PASSWORD = "tester-password"  # noqa: S105 - a throwaway login on the test's own broker


@pytest.fixture
def broker(tmp_path, settings, postgres) -> Iterator[PrivateBroker]:
    broker = PrivateBroker(tmp_path)
    broker.start()
    settings.EVFLEET_MQTT_BROKER_URL = broker.url
    settings.EVFLEET_MQTT_DYNSEC = True
    settings.EVFLEET_MQTT_ADMIN_USERNAME = ADMIN_USERNAME
    settings.EVFLEET_MQTT_ADMIN_PASSWORD = broker.admin_password
    with admin_connection() as admin:
        broker_setup(admin, bridge_username=BRIDGE_USERNAME, bridge_password=broker.bridge_password)
        # A test tool that may publish to any vehicle's topic (what no vehicle key may do), to reach the
        # bridge with input the broker would otherwise stop.
        admin.run(
            [
                {
                    "command": "createRole",
                    "rolename": TESTER,
                    "acls": [
                        {"acltype": "publishClientSend", "topic": "evfleet/#", "priority": 0, "allow": True},
                        {"acltype": "subscribePattern", "topic": "evfleet/#", "priority": 0, "allow": True},
                    ],
                },
                {
                    "command": "createClient",
                    "username": TESTER,
                    "password": TESTER_PASSWORD,
                    "roles": [{"rolename": TESTER, "priority": 0}],
                },
            ]
        )
    try:
        yield broker
    finally:
        broker.stop()


def run_bridge(bridge: TelemetryBridge) -> threading.Thread:
    def target() -> None:
        try:
            bridge.run()
        finally:
            connection.close()  # this thread's own database connection

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    assert bridge.subscribed.wait(10), "the bridge did not subscribe"
    return thread


@pytest.fixture
def bridge(broker) -> Iterator[TelemetryBridge]:
    bridge = TelemetryBridge(
        url=broker.url, client_id="bridge-under-test", username=BRIDGE_USERNAME, password=broker.bridge_password
    )
    thread = run_bridge(bridge)
    yield bridge
    assert thread.is_alive(), "the bridge died"
    bridge.stop()
    thread.join(10)


def start_time() -> dt.datetime:
    return timezone.now().replace(microsecond=0) - dt.timedelta(hours=2)


def test_a_vehicle_key_publishes_its_batch_and_reads_each_items_result(broker, bridge):
    vehicle = f.VehicleFactory()
    key, raw_key = vehicle_key_issue(vehicle=vehicle)
    start = start_time()
    batch = [*readings(start, 2, soc_pct=64.0), reading(start + dt.timedelta(seconds=2), soc_pct=150.0)]

    with VehicleClient(broker, username=key_username(key), password=raw_key) as bus:
        assert bus.wait_connected(), bus.connect_reasons
        assert not bus.subscribe(result_topic(vehicle.pk))[0].is_failure
        bus.publish(telemetry_topic(vehicle.pk), {"readings": batch})
        topic, answer = bus.next_result()
        bus.publish(telemetry_topic(vehicle.pk), {"readings": batch})  # a re-send after a lost answer
        _topic, again = bus.next_result()

    assert topic == result_topic(vehicle.pk)
    assert answer["counts"] == {"created": 2, "duplicate": 0, "conflict": 0, "rejected": 1}
    assert answer["statuses"] == ["created", "created", "rejected"]
    assert answer["errors"] == [{"index": 2, "errors": {"soc_pct": "Must be between 0 and 100."}}]
    assert again["statuses"] == ["duplicate", "duplicate", "rejected"]
    stored = list(TelemetryReading.objects.filter(vehicle=vehicle).order_by("recorded_at").values_list("soc_pct"))
    assert stored == [(64.0,), (64.0,)]
    assert VehicleLiveState.objects.get(vehicle=vehicle).soc_pct == 64.0
    assert bridge.stats.counts == {"created": 2, "duplicate": 2, "conflict": 0, "rejected": 2}


def test_bad_input_is_answered_on_the_result_topic_and_never_stops_the_bridge(broker, bridge, settings):
    settings.EVFLEET_TELEMETRY_MAX_BYTES = 4_000
    vehicle, other = f.VehicleFactory(), f.VehicleFactory()
    topic = telemetry_topic(vehicle.pk)
    start = start_time()
    with VehicleClient(broker, username=TESTER, password=TESTER_PASSWORD) as tool:
        assert tool.wait_connected(), tool.connect_reasons
        tool.subscribe("evfleet/v1/vehicles/+/telemetry/result")
        cases = [
            (topic, b'{"readings": [{"recorded_at": ', "invalid_json"),
            (topic, b"[1, 2, 3]", "invalid_body"),
            (topic, b'{"readings": []}', "invalid_body"),
            (topic, b'{"readings": [{"recorded_at": "2026-01-01T00:00:00Z"}], "extra": 1}', "invalid_body"),
            (topic, b'{"readings": [' + b"1," * 3_000 + b"1]}", "payload_too_large"),
            (telemetry_topic(999_999_999), {"readings": readings(start, 2)}, "unknown_vehicle"),
            (topic, {"readings": [reading(start, vehicle=other.pk)]}, "forbidden"),
        ]
        answers = []
        for case_topic, payload, _expected in cases:
            tool.publish(case_topic, payload)
            answers.append(tool.next_result())
        # Readings that fail validation are rejected item by item, with the reason.
        tool.publish(topic, {"readings": [reading(start, latitude=95.0), reading(start, soc_pct="full")]})
        _t, invalid = tool.next_result()
        tool.publish(topic, {"readings": readings(start, 3)})  # and the bridge still works
        _t, good = tool.next_result()

    for (case_topic, _payload, expected), (answer_topic, answer) in zip(cases, answers, strict=True):
        assert answer_topic == f"{case_topic}/result"
        assert answer["error"] == expected, answer
        assert answer["detail"]
    assert invalid["counts"]["rejected"] == 2 and set(invalid["errors"][0]["errors"]) == {"latitude"}
    assert good["counts"]["created"] == 3
    assert TelemetryReading.objects.filter(vehicle=vehicle).count() == 3
    assert not TelemetryReading.objects.filter(vehicle=other).exists()


def test_the_broker_lets_a_vehicle_publish_only_to_its_own_topic(broker, bridge):
    mine, theirs = f.VehicleFactory(), f.VehicleFactory()
    key, raw_key = vehicle_key_issue(vehicle=mine)
    vehicle_key_issue(vehicle=theirs)
    start = start_time()

    with VehicleClient(broker, username=key_username(key), password=raw_key) as bus:
        assert bus.wait_connected(), bus.connect_reasons
        assert bus.subscribe(result_topic(theirs.pk))[0].is_failure  # no reading another vehicle's answers
        assert bus.subscribe("evfleet/#")[0].is_failure
        # MQTT 3.1.1 has no way to say "refused": the broker acknowledges and drops the message.
        assert bus.publish(telemetry_topic(theirs.pk), {"readings": readings(start, 5)})
        # One client's messages arrive in order: once our own answer is back, the bridge would have seen
        # the earlier one, had the broker let it through.
        assert not bus.subscribe(result_topic(mine.pk))[0].is_failure
        bus.publish(telemetry_topic(mine.pk), {"readings": readings(start, 2)})
        topic, answer = bus.next_result()

    assert topic == result_topic(mine.pk) and answer["counts"]["created"] == 2
    assert bus.results.empty()
    assert not TelemetryReading.objects.filter(vehicle=theirs).exists()
    assert bridge.stats.messages == 1
    assert connect_reason(broker, username=key_username(key), password=raw_key + "x").is_failure
    assert connect_reason(broker, username="anyone", password="").is_failure


def test_the_bridge_outlives_its_database_connection(broker, bridge):
    # Cut between two messages: Django's connection health check replaces it before the next one.
    vehicle = f.VehicleFactory()
    start = start_time()
    with VehicleClient(broker, username=TESTER, password=TESTER_PASSWORD) as tool:
        assert tool.wait_connected(), tool.connect_reasons
        tool.subscribe(result_topic(vehicle.pk))
        tool.publish(telemetry_topic(vehicle.pk), {"readings": readings(start, 2)})
        assert tool.next_result()[1]["counts"]["created"] == 2  # the bridge holds a database connection now
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert cursor.fetchone()[0] >= 1
        tool.publish(telemetry_topic(vehicle.pk), {"readings": readings(start + dt.timedelta(minutes=1), 3)})
        _topic, answer = tool.next_result()
        time.sleep(0.5)
        assert tool.results.empty()

    assert answer["counts"]["created"] == 3
    assert TelemetryReading.objects.filter(vehicle=vehicle).count() == 5


def test_a_connection_lost_mid_message_is_retried_and_the_batch_stored_once(broker, bridge):
    vehicle = f.VehicleFactory()
    start = start_time()
    with VehicleClient(broker, username=TESTER, password=TESTER_PASSWORD) as tool:
        assert tool.wait_connected(), tool.connect_reasons
        tool.subscribe(result_topic(vehicle.pk))
        # Hold the live-state table: the bridge's ingest stops there, after its COPY, before its commit.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {VehicleLiveState._meta.db_table} IN ACCESS EXCLUSIVE MODE")
            tool.publish(telemetry_topic(vehicle.pk), {"readings": readings(start, 4)})
            waiting: list[int] = []
            deadline = time.monotonic() + 15
            while not waiting and time.monotonic() < deadline:
                cursor.execute("SELECT pg_stat_clear_snapshot()")  # the view is otherwise frozen per transaction
                cursor.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
                waiting = [row[0] for row in cursor.fetchall()]
                time.sleep(0.05)
            assert waiting, "the bridge never reached the lock"
            cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [waiting])
        _topic, answer = tool.next_result()
        time.sleep(0.5)
        assert tool.results.empty()

    assert bridge.stats.database_retries >= 1
    assert answer["counts"]["created"] == 4  # the cut transaction left nothing behind
    assert TelemetryReading.objects.filter(vehicle=vehicle).count() == 4


def test_bridges_in_a_share_group_split_the_messages_and_store_each_once(broker):
    bridges = [
        TelemetryBridge(
            url=broker.url,
            client_id=f"shared-bridge-{n}",
            username=BRIDGE_USERNAME,
            password=broker.bridge_password,
            share_group="evfleet",
        )
        for n in range(2)
    ]
    threads = [run_bridge(bridge) for bridge in bridges]
    vehicle = f.VehicleFactory()
    start = start_time()
    try:
        with VehicleClient(broker, username=TESTER, password=TESTER_PASSWORD) as tool:
            assert tool.wait_connected(), tool.connect_reasons
            tool.subscribe(result_topic(vehicle.pk))
            for n in range(10):
                tool.publish(telemetry_topic(vehicle.pk), {"readings": readings(start + dt.timedelta(minutes=n), 5)})
            answers = [tool.next_result()[1] for _ in range(10)]
            time.sleep(0.5)
            assert tool.results.empty()  # one answer per message: no bridge saw a message twice
    finally:
        for bridge in bridges:
            bridge.stop()
        for thread in threads:
            thread.join(10)
    assert sum(answer["counts"]["created"] for answer in answers) == 50
    assert TelemetryReading.objects.filter(vehicle=vehicle).count() == 50
    assert all(bridge.stats.messages > 0 for bridge in bridges), [b.stats.messages for b in bridges]


def test_issuing_revoking_and_rotating_keys_updates_the_broker(broker, settings):
    vehicle = f.VehicleFactory()
    key, raw_key = vehicle_key_issue(vehicle=vehicle)
    assert not connect_reason(broker, username=key_username(key), password=raw_key).is_failure

    new_key, new_raw = vehicle_key_rotate(vehicle=vehicle, grace=dt.timedelta(0))
    assert connect_reason(broker, username=key_username(key), password=raw_key).is_failure
    assert not connect_reason(broker, username=key_username(new_key), password=new_raw).is_failure

    # Rotation with a grace period: the old key keeps working until the sync after its end.
    newest, newest_raw = vehicle_key_rotate(vehicle=vehicle, grace=dt.timedelta(hours=1))
    assert not connect_reason(broker, username=key_username(new_key), password=new_raw).is_failure
    VehicleApiKey.objects.filter(pk=new_key.pk).update(revoked_at=timezone.now() - dt.timedelta(seconds=1))
    settings.EVFLEET_MQTT_DYNSEC = False  # a key issued while evfleet did not manage the broker
    unmanaged, _raw = vehicle_key_issue(vehicle=vehicle)
    settings.EVFLEET_MQTT_DYNSEC = True
    settings.EVFLEET_MQTT_USERNAME, settings.EVFLEET_MQTT_PASSWORD = BRIDGE_USERNAME, broker.bridge_password
    out = io.StringIO()
    call_command("mqtt_broker_sync", "--setup", stdout=out)  # the second setup of this broker: no error
    assert f"Bridge login {BRIDGE_USERNAME!r} and its role are in place." in out.getvalue()
    assert f"Deleted 1 broker logins of revoked keys: {key_username(new_key)}" in out.getvalue()
    assert key_username(unmanaged) in out.getvalue()
    assert connect_reason(broker, username=key_username(new_key), password=new_raw).is_failure
    assert not connect_reason(broker, username=key_username(newest), password=newest_raw).is_failure

    with VehicleClient(broker, username=key_username(newest), password=newest_raw) as bus:
        assert bus.wait_connected(), bus.connect_reasons
        vehicle_key_revoke(key=newest)
        deadline = time.monotonic() + 10
        while bus.connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not bus.connected.is_set()  # the session logged in with the revoked key was closed
    assert connect_reason(broker, username=key_username(newest), password=newest_raw).is_failure
