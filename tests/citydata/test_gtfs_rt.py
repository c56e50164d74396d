"""The GTFS-Realtime VehiclePositions feed, parsed back with the bindings and checked against the registry."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.utils import timezone
from google.transit import gtfs_realtime_pb2

from citydata.models import FeedSettings
from fleet.models import Vehicle
from fleet.telemetry.ingest import telemetry_ingest
from tests import factories as f
from tests.citydata.conftest import token_client
from tests.fleet.test_telemetry_support import reading

pytestmark = pytest.mark.django_db
PB = "/api/v1/city/gtfs-rt/vehicle-positions.pb"
JSON = "/api/v1/city/gtfs-rt/vehicle-positions.json"


def block_now(depot, vehicle):
    """A block of ``depot`` running from two hours ago to two hours ahead, assigned to ``vehicle``."""
    local = timezone.now().astimezone(zoneinfo.ZoneInfo(depot.time_zone))
    start, end = local - dt.timedelta(hours=2), local + dt.timedelta(hours=2)
    block = f.BlockFactory(
        depot=depot,
        service_date=start.date(),
        departs_at=start.time().replace(microsecond=0, second=0),
        returns_at=end.time().replace(microsecond=0, second=0),
    )
    return f.BlockAssignmentFactory(block=block, vehicle=vehicle, service_date=start.date())


def drive_north(vehicle, *, minutes: int = 10, speed_kmh: float = 36.0) -> list[dict]:
    """One reading a minute, ending a minute ago, moving north 0.005° a minute."""
    end = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=1)
    items = [
        reading(
            end - dt.timedelta(minutes=minutes - 1 - i),
            latitude=29.05 + 0.005 * i,
            longitude=-110.95,
            speed_kmh=speed_kmh,
        )
        for i in range(minutes)
    ]
    telemetry_ingest(readings=items, vehicle=vehicle)
    return items


@pytest.fixture
def in_service(two_depots):
    w = two_depots
    w["org"].slug = "sonora-bus"
    w["org"].save()
    for side in ("a", "b"):
        w[f"assignment_{side}"] = block_now(w[f"depot_{side}"], w[f"vehicle_{side}"])
        w[f"drive_{side}"] = drive_north(w[f"vehicle_{side}"])
    # Parked in depot A: seen now, in service status, but on no block - not published.
    w["parked"] = f.VehicleFactory(organization=w["org"], home_depot=w["depot_a"])
    drive_north(w["parked"])
    # On a block but in the workshop: not published either.
    w["workshop"] = f.VehicleFactory(organization=w["org"], home_depot=w["depot_a"], status=Vehicle.Status.MAINTENANCE)
    block_now(w["depot_a"], w["workshop"])
    drive_north(w["workshop"])
    return w


def parse(response) -> gtfs_realtime_pb2.FeedMessage:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/x-protobuf"
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.ParseFromString(response.content)
    return feed


def test_a_member_reads_the_vehicles_of_their_depots_on_a_block_now(api_client, in_service):
    w = in_service
    feed = parse(token_client(api_client, w["manager_a"]).get(PB, {"organization": "sonora-bus"}))

    assert feed.header.gtfs_realtime_version == "2.0"
    assert feed.header.incrementality == gtfs_realtime_pb2.FeedHeader.FULL_DATASET
    assert abs(feed.header.timestamp - timezone.now().timestamp()) < 60
    assert [e.vehicle.vehicle.id for e in feed.entity] == [str(w["vehicle_a"].pk)]  # not B's, not parked, not workshop
    position = feed.entity[0].vehicle
    vehicle, assignment, last = w["vehicle_a"], w["assignment_a"], w["drive_a"][-1]
    assert position.vehicle.label == vehicle.fleet_number
    assert position.trip.trip_id == assignment.block.code
    assert position.trip.start_date == assignment.service_date.strftime("%Y%m%d")
    assert position.trip.start_time == assignment.block.departs_at.strftime("%H:%M:%S")
    assert position.position.latitude == pytest.approx(last["latitude"], abs=1e-5)
    assert position.position.longitude == pytest.approx(last["longitude"], abs=1e-5)
    assert position.position.speed == pytest.approx(10.0, abs=1e-3)  # 36 km/h in m/s
    assert position.position.bearing == pytest.approx(0.0, abs=0.01)  # due north
    assert position.timestamp == int(dt.datetime.fromisoformat(last["recorded_at"]).timestamp())


def test_the_json_debug_view_is_the_same_feed(api_client, in_service):
    client = token_client(api_client, in_service["manager_a"])
    body = client.get(JSON, {"organization": "sonora-bus"}).json()
    feed = parse(client.get(PB, {"organization": "sonora-bus"}))
    assert [e["vehicle"]["vehicle"]["label"] for e in body["entity"]] == [e.vehicle.vehicle.label for e in feed.entity]
    assert body["entity"][0]["vehicle"]["trip"]["trip_id"] == feed.entity[0].vehicle.trip.trip_id


def test_token_protected_by_default_and_public_when_the_organisation_chooses(api_client, in_service):
    w = in_service
    assert api_client.get(PB, {"organization": "sonora-bus"}).status_code == 401
    assert api_client.get(PB).status_code == 401
    FeedSettings.objects.create(organization=w["org"], gtfs_rt_public=True)
    feed = parse(api_client.get(PB, {"organization": "sonora-bus"}))
    # Public: every vehicle of the organisation on a block, both depots.
    assert sorted(e.vehicle.vehicle.id for e in feed.entity) == sorted(str(w[f"vehicle_{s}"].pk) for s in "ab")
    # Another organisation's member does not get a token-protected feed of someone else.
    other = f.OrganizationFactory(slug="elsewhere")
    assert token_client(api_client, w["manager_a"]).get(PB, {"organization": other.slug}).status_code == 404
    assert token_client(api_client, w["manager_a"]).get(PB, {"organization": "not a slug!"}).status_code == 400


def test_a_delay_publishes_the_positions_of_that_long_ago(api_client, in_service):
    w = in_service
    FeedSettings.objects.create(organization=w["org"], position_delay_seconds=5 * 60 + 30)
    feed = parse(token_client(api_client, w["manager_a"]).get(PB, {"organization": "sonora-bus"}))
    shown = feed.entity[0].vehicle
    # The feed's clock is 5.5 minutes late: it shows the last reading at or before it, 5 or 6 minutes old.
    as_of = feed.header.timestamp
    expected = [r for r in w["drive_a"] if dt.datetime.fromisoformat(r["recorded_at"]).timestamp() <= as_of][-1]
    assert expected in w["drive_a"][-7:-4]
    assert shown.timestamp == int(dt.datetime.fromisoformat(expected["recorded_at"]).timestamp())
    assert shown.position.latitude == pytest.approx(expected["latitude"], abs=1e-5)
    assert feed.header.timestamp <= timezone.now().timestamp() - 5 * 60
