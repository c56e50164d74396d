"""The telemetry batch endpoint, told as a bus and a depot gateway would use it, and every way to get it wrong."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from fleet.models import TelemetryReading, VehicleLiveState
from fleet.telemetry.keys import vehicle_key_issue, vehicle_key_revoke, vehicle_key_rotate
from tests import factories as f
from tests.fleet.test_telemetry_support import BATCH_URL, LIVE_URL, URLCONF, fast_password_hashing, reading, readings

pytestmark = [pytest.mark.django_db, pytest.mark.urls(URLCONF)]
_fast_hashing = pytest.fixture(autouse=True)(fast_password_hashing)


def post_raw(client, body: bytes | str, *, key: str | None = None, content_type="application/json"):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return client.generic("POST", BATCH_URL, body, content_type=content_type, **headers)


def post(client, items, *, key: str | None = None):
    return post_raw(client, json.dumps({"readings": items}), key=key)


@pytest.fixture
def bus(two_depots):
    vehicle = two_depots["vehicle_a"]
    _key, raw_key = vehicle_key_issue(vehicle=vehicle)
    return vehicle, raw_key


@pytest.fixture
def staff_client(two_depots, api_client):
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=two_depots['staff_a']).key}")
    return api_client


def an_hour_ago() -> dt.datetime:
    return timezone.now().replace(microsecond=0) - dt.timedelta(hours=1)


def test_a_bus_uploads_resends_and_sees_conflicts_never_overwritten(api_client, bus):
    vehicle, key = bus
    batch = readings(an_hour_ago(), 10)

    first = post(api_client, batch, key=key)
    assert first.status_code == 200, first.content
    assert first.json()["counts"] == {"created": 10, "duplicate": 0, "conflict": 0, "rejected": 0}

    # The connection dropped before the bus saw the answer: it sends the same batch again.
    again = post(api_client, batch, key=key)
    assert again.json()["statuses"] == ["duplicate"] * 10

    # A buggy firmware re-sends one instant with another SoC: reported, not stored.
    batch[3] = {**batch[3], "soc_pct": 10.0}
    changed = post(api_client, batch, key=key)
    assert changed.json()["statuses"][3] == "conflict"
    assert TelemetryReading.objects.filter(vehicle=vehicle).count() == 10
    assert TelemetryReading.objects.get(vehicle=vehicle, recorded_at=batch[3]["recorded_at"]).soc_pct == 72.5


def test_duplicates_and_conflicts_inside_one_batch(api_client, bus):
    _vehicle, key = bus
    at = an_hour_ago()
    batch = [reading(at), reading(at), reading(at, soc_pct=50.0), reading(at + dt.timedelta(seconds=1))]

    response = post(api_client, batch, key=key)

    assert response.json()["statuses"] == ["created", "duplicate", "conflict", "created"]


def test_the_live_state_follows_the_latest_reading_only_forward(api_client, bus, two_depots):
    vehicle, key = bus
    start = an_hour_ago()
    post(api_client, readings(start, 5, soc_pct=60.0), key=key)
    post(api_client, [reading(start - dt.timedelta(hours=5), soc_pct=99.0)], key=key)  # an old back-fill

    live = VehicleLiveState.objects.get(vehicle=vehicle)
    assert live.recorded_at == start + dt.timedelta(seconds=4)
    assert live.soc_pct == 60.0

    # A later reading without position keeps the last known one.
    later = reading(start + dt.timedelta(minutes=10), soc_pct=58.0)
    del later["latitude"], later["longitude"]
    post(api_client, [later], key=key)
    live.refresh_from_db()
    assert (live.soc_pct, live.latitude) == (58.0, 29.0729)


def test_depot_staff_upload_for_their_depots_vehicles_only(staff_client, two_depots):
    vehicle_a, vehicle_b = two_depots["vehicle_a"], two_depots["vehicle_b"]
    at = an_hour_ago()
    batch = [
        reading(at, vehicle=vehicle_a.pk),
        reading(at + dt.timedelta(seconds=1), fleet_number=vehicle_a.fleet_number),
        reading(at, vehicle=vehicle_b.pk),  # another depot's bus
        reading(at, fleet_number=vehicle_b.fleet_number),
        reading(at, vehicle=999_999),  # no such vehicle
        reading(at),  # which vehicle?
    ]

    body = post(staff_client, batch).json()

    assert body["statuses"] == ["created", "created", "rejected", "rejected", "rejected", "rejected"]
    reasons = {item["index"]: item["errors"] for item in body["errors"]}
    assert reasons[2] == reasons[4] == {"vehicle": "Unknown vehicle."}  # not "exists elsewhere"
    assert "vehicle" in reasons[5]
    assert not TelemetryReading.objects.filter(vehicle=vehicle_b).exists()


def test_a_viewer_cannot_upload(api_client, two_depots):
    viewer = f.UserFactory()
    f.MembershipFactory(user=viewer, depot=two_depots["depot_a"], role="viewer")
    api_client.force_authenticate(viewer)

    body = post(api_client, [reading(an_hour_ago(), vehicle=two_depots["vehicle_a"].pk)]).json()

    assert body["counts"]["rejected"] == 1


def test_a_vehicle_key_cannot_write_for_another_vehicle(api_client, bus, two_depots):
    other = two_depots["vehicle_b"]

    by_id = post(api_client, [reading(an_hour_ago(), vehicle=other.pk)], key=bus[1])
    by_number = post(api_client, [reading(an_hour_ago(), fleet_number=other.fleet_number)], key=bus[1])

    assert by_id.status_code == by_number.status_code == 403
    assert "own vehicle" in by_id.json()["detail"]
    assert not TelemetryReading.objects.exists()


def test_a_vehicle_key_opens_nothing_but_the_batch_upload(api_client, bus):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {bus[1]}")

    assert api_client.get(LIVE_URL).status_code in (401, 403)
    assert api_client.get("/api/v1/vehicles/").status_code in (401, 403)


def test_revoked_rotated_and_forged_keys(api_client, two_depots):
    vehicle = two_depots["vehicle_a"]
    key, raw = vehicle_key_issue(vehicle=vehicle)
    batch = [reading(an_hour_ago())]

    _new, new_raw = vehicle_key_rotate(vehicle=vehicle, grace=dt.timedelta(hours=1))
    assert post(api_client, batch, key=raw).status_code == 200  # still inside the grace period
    assert post(api_client, batch, key=new_raw).status_code == 200

    vehicle_key_revoke(key=key)
    assert post(api_client, batch, key=raw).status_code == 401
    forged = new_raw[:-4] + "AAAA"
    assert post(api_client, batch, key=forged).status_code == 401
    assert post(api_client, batch).status_code == 401  # no credentials at all


def test_a_key_is_stored_only_as_a_hash(two_depots):
    key, raw = vehicle_key_issue(vehicle=two_depots["vehicle_a"])

    assert raw.startswith("evk_") and raw not in (key.key_hash, key.prefix)
    assert len(key.key_hash) == 64


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"soc_pct": True}, "soc_pct"),
        ({"soc_pct": "55"}, "soc_pct"),
        ({"soc_pct": [55]}, "soc_pct"),
        ({"soc_pct": {"value": 55}}, "soc_pct"),
        ({"soc_pct": 100.5}, "soc_pct"),
        ({"pack_current_a": -9_999}, "pack_current_a"),
        ({"latitude": 91.0}, "latitude"),
        ({"longitude": None}, "latitude"),  # half a position
        ({"pack_temp_min_c": 40.0, "pack_temp_max_c": 30.0}, "pack_temp_min_c"),
        ({"odometer_km": 2**70}, "odometer_km"),  # parsed as a float by orjson, then out of range
        ({"charging_state": "fast"}, "charging_state"),
        ({"recorded_at": "2026-01-01T10:00:00"}, "recorded_at"),  # naive
        ({"recorded_at": "yesterday"}, "recorded_at"),
        ({"recorded_at": 1_700_000_000}, "recorded_at"),
        ({"recorded_at": "1999-12-31T23:59:59Z"}, "recorded_at"),
        ({"engine_rpm": 1200}, "non_field_errors"),  # unknown field
    ],
)
def test_each_bad_reading_is_rejected_with_its_reason(api_client, bus, item, field):
    good = reading(an_hour_ago())
    bad = {**reading(an_hour_ago() + dt.timedelta(seconds=1)), **item}

    response = post(api_client, [good, bad], key=bus[1])

    assert response.status_code == 200
    body = response.json()
    assert body["statuses"] == ["created", "rejected"]
    assert field in body["errors"][0]["errors"]


def test_a_reading_from_the_future_is_rejected_but_five_minutes_of_clock_skew_pass(api_client, bus):
    now = timezone.now()
    batch = [reading(now + dt.timedelta(minutes=4)), reading(now + dt.timedelta(minutes=6))]

    assert post(api_client, batch, key=bus[1]).json()["statuses"] == ["created", "rejected"]


def test_a_reading_with_no_measurement_and_a_non_object_are_rejected(api_client, bus):
    batch = [{"recorded_at": an_hour_ago().isoformat()}, 42, None, "reading"]

    body = post(api_client, batch, key=bus[1]).json()

    assert body["statuses"] == ["rejected"] * 4


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"readings": [{"recorded_at": "2026-01-01T00:00:00Z", "soc_pct": NaN}]}', 400),
        (b'{"readings": [{"recorded_at": "2026-01-01T00:00:00Z", "soc_pct": Infinity}]}', 400),
        (b'{"readings": [{"recorded_at": "2026-01-01T00:00:00Z", "soc_pct": -Infinity}]}', 400),
        (b'{"readings": [{"recorded_at": "2026-01-01T00:00:00Z", "soc_pct": 1' + b"0" * 400 + b"}]}", 400),
        (b'{"readings": [' + b"[" * 5000 + b"]" * 5000 + b"]}", 400),
        (b'{"readings": []}', 400),
        (b"[]", 400),
        (b'{"readings": {"soc_pct": 1}}', 400),
        (b'{"readings": [{}], "vehicle": 1}', 400),
        (b"not json", 400),
        (b"\xff\xfe", 400),
        (b"", 400),
    ],
)
def test_malformed_bodies_get_a_json_4xx(api_client, bus, body, status):
    response = post_raw(api_client, body, key=bus[1])

    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    assert response.json()


def test_only_json_is_accepted(api_client, bus):
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        response = post_raw(
            api_client, json.dumps({"readings": [reading(an_hour_ago())]}), key=bus[1], content_type=content_type
        )
        assert response.status_code == 415, content_type
        assert "detail" in response.json()


def test_batches_over_the_limits_get_413(api_client, bus, settings):
    settings.EVFLEET_TELEMETRY_MAX_BATCH = 5
    too_many = post(api_client, readings(an_hour_ago(), 6), key=bus[1])
    assert too_many.status_code == 413
    assert "5 readings" in too_many.json()["detail"]

    settings.EVFLEET_TELEMETRY_MAX_BATCH = 5_000
    settings.EVFLEET_TELEMETRY_MAX_BYTES = 2_000
    too_big = post(api_client, readings(an_hour_ago(), 20), key=bus[1])
    assert too_big.status_code == 413
    assert "bytes" in too_big.json()["detail"]
    assert not TelemetryReading.objects.exists()


def test_live_state_is_scoped_to_the_users_depots(api_client, two_depots):
    for vehicle in (two_depots["vehicle_a"], two_depots["vehicle_b"]):
        _key, raw = vehicle_key_issue(vehicle=vehicle)
        post(api_client, [reading(an_hour_ago(), soc_pct=44.0)], key=raw)
    api_client.credentials()
    api_client.force_authenticate(two_depots["staff_a"])

    listed = api_client.get(LIVE_URL).json()["results"]
    own = api_client.get(f"{LIVE_URL}{two_depots['vehicle_a'].pk}/")
    other = api_client.get(f"{LIVE_URL}{two_depots['vehicle_b'].pk}/")

    assert [row["vehicle"] for row in listed] == [two_depots["vehicle_a"].pk]
    assert listed[0]["charging_state"] == "none" and listed[0]["soc_pct"] == 44.0
    assert own.status_code == 200
    assert other.status_code == 404


def test_the_batch_endpoint_is_documented(api_client, two_depots):
    api_client.force_authenticate(two_depots["manager_a"])
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator(urlconf=URLCONF).get_schema(request=None, public=True)

    operation = schema["paths"][BATCH_URL]["post"]
    assert "application/json" in operation["requestBody"]["content"]
    assert {"200", "413", "415"} <= set(operation["responses"])
    assert "vehicleKey" in schema["components"]["securitySchemes"]
