"""A bus whose telemetry enters its depot's geofence has arrived: a vehicle_arrived event with its SoC, and the
re-plan that follows uses that SoC - without anyone typing it."""

import datetime as dt

import orjson
import pytest
from django.utils import timezone

from charging.models import ChargingPlan, DepotEvent, PlannedCharge
from charging.planning import current_service_night
from fleet.telemetry.keys import vehicle_key_issue
from tests import factories as f

pytestmark = pytest.mark.django_db

DEPOT_AT = (29.0729, -110.9559)
INSIDE = (29.0738, -110.9559)  # 100 m from the depot
OUTSIDE = (29.0900, -110.9559)  # 1.9 km


@pytest.fixture
def bus():
    depot = f.DepotFactory(latitude=DEPOT_AT[0], longitude=DEPOT_AT[1], geofence_radius_m=250.0)
    f.ConnectorFactory(charger=f.ChargerFactory(depot=depot, max_kw=150), connector_id=1, max_kw=150)
    vehicle = f.VehicleFactory(organization=depot.organization, home_depot=depot)
    _key, raw = vehicle_key_issue(vehicle=vehicle)
    vehicle.raw_key = raw
    return vehicle


def _upload(client, bus, readings: list[tuple[dt.datetime, tuple[float, float], float]]):
    body = {
        "readings": [
            {"recorded_at": at.isoformat(), "latitude": where[0], "longitude": where[1], "soc_pct": soc}
            for at, where, soc in readings
        ]
    }
    response = client.generic(
        "POST",
        "/api/v1/telemetry/batch/",
        orjson.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {bus.raw_key}",
    )
    assert response.status_code == 200, response.content
    return response


def test_a_bus_entering_its_depots_fence_arrives_and_is_replanned_from_its_soc(
    client, bus, eager_tasks, django_capture_on_commit_callbacks
):
    now = timezone.now().replace(microsecond=0)
    back_at = now - dt.timedelta(minutes=1)
    with django_capture_on_commit_callbacks(execute=True):
        _upload(client, bus, [(now - dt.timedelta(minutes=3), OUTSIDE, 35.0)])
        _upload(client, bus, [(now - dt.timedelta(minutes=2), OUTSIDE, 34.5), (back_at, INSIDE, 34.0)])
        _upload(client, bus, [(now, INSIDE, 34.0)])  # parked: no second arrival

    event = DepotEvent.objects.get(vehicle=bus)
    assert (event.kind, event.soc_pct, event.occurred_at) == (DepotEvent.Kind.VEHICLE_ARRIVED, 34.0, back_at)
    assert event.depot_id == bus.home_depot_id and event.reported_by is None
    plan = ChargingPlan.objects.get(depot=bus.home_depot, status=ChargingPlan.Status.ACTIVE)
    assert plan.trigger == ChargingPlan.Trigger.EVENT
    assert plan.service_night == current_service_night(bus.home_depot, back_at)
    charge = PlannedCharge.objects.get(plan=plan, vehicle=bus)
    assert charge.arrival_soc_pct == pytest.approx(34.0)
    assert charge.sources["arrival_soc"]["kind"] == "reported"
    assert dt.datetime.fromisoformat(charge.sources["arrival_soc"]["at"]) == back_at


def test_a_re_sent_batch_or_a_bus_out_of_service_makes_no_event(
    client, bus, eager_tasks, django_capture_on_commit_callbacks
):
    now = timezone.now().replace(microsecond=0)
    crossing = [(now - dt.timedelta(minutes=2), OUTSIDE, 50.0), (now - dt.timedelta(minutes=1), INSIDE, 49.0)]
    with django_capture_on_commit_callbacks(execute=True):
        _upload(client, bus, crossing)
        _upload(client, bus, crossing)
    assert DepotEvent.objects.filter(vehicle=bus).count() == 1

    bus.status = "maintenance"
    bus.save()
    with django_capture_on_commit_callbacks(execute=True):
        _upload(client, bus, [(now + dt.timedelta(seconds=30), OUTSIDE, 48.0)])
        _upload(client, bus, [(now + dt.timedelta(seconds=60), INSIDE, 48.0)])
    assert DepotEvent.objects.filter(vehicle=bus).count() == 1
