"""The demo's synthetic telemetry: a day that drives, spends energy at the model's rate, and charges at night."""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo

import pytest
from django.utils import timezone

from fleet.models import TelemetryReading, Vehicle, VehicleLiveState
from fleet.telemetry.synthetic import STEP, synthetic_telemetry
from tests import factories as f

pytestmark = pytest.mark.django_db


def km_between(lat1, lon1, lat2, lon2) -> float:
    dy = (lat2 - lat1) * 111.32
    dx = (lon2 - lon1) * 111.32 * math.cos(math.radians(lat1))
    return math.hypot(dx, dy)


@pytest.fixture
def bus_on_duty(db):
    depot = f.DepotFactory(latitude=29.0729, longitude=-110.9559, time_zone="America/Hermosillo")
    bus = f.VehicleFactory(organization=depot.organization, home_depot=depot)
    zone = zoneinfo.ZoneInfo(depot.time_zone)
    # The last 23:00 that has passed (readings from the future are refused), whatever the hour the suite runs.
    now = timezone.now().astimezone(zone)
    end = now.replace(hour=23, minute=0, second=0, microsecond=0)
    if end > now:
        end -= dt.timedelta(days=1)
    today = end.date()
    block = f.BlockFactory(
        depot=depot, service_date=today, departs_at=dt.time(6, 0), returns_at=dt.time(14, 0), distance_km=160.0
    )
    f.BlockAssignmentFactory(block=block, vehicle=bus, service_date=today)
    parked = f.VehicleFactory(organization=depot.organization, home_depot=depot, status=Vehicle.Status.MAINTENANCE)
    return bus, parked, end


def test_a_day_drives_the_block_spends_at_the_models_rate_and_charges_at_night(bus_on_duty):
    bus, parked, end = bus_on_duty
    sent = synthetic_telemetry(Vehicle.objects.filter(pk__in=[bus.pk, parked.pk]), end=end, hours=24)

    rows = list(TelemetryReading.objects.filter(vehicle=bus).order_by("recorded_at"))
    assert sent == len(rows) == 24 * 60 // int(STEP.total_seconds() / 60)
    assert not TelemetryReading.objects.filter(vehicle=parked).exists()  # in the workshop: no readings
    zone = zoneinfo.ZoneInfo("America/Hermosillo")
    today = end.date()
    on_duty = [
        r
        for r in rows
        if r.recorded_at.astimezone(zone).date() == today and 6 <= r.recorded_at.astimezone(zone).hour < 14
    ]
    driven_km = on_duty[-1].odometer_km - on_duty[0].odometer_km
    assert 120 <= driven_km <= 200  # the block's 160 km, give or take the random traffic
    spent = on_duty[-1].energy_discharged_kwh - on_duty[0].energy_discharged_kwh
    model = bus.model
    assert model.consumption_kwh_per_km * 0.999 <= spent / driven_km <= model.consumption_kwh_per_km * 1.3  # + A/C
    assert on_duty[-1].soc_pct < on_duty[0].soc_pct - 20
    assert max(km_between(29.0729, -110.9559, r.latitude, r.longitude) for r in on_duty) < 10
    assert any(r.speed_kmh == 0 for r in on_duty) and max(r.speed_kmh for r in on_duty) > 20
    night = [
        r for r in rows if r.recorded_at.astimezone(zone).hour >= 22 and r.recorded_at.astimezone(zone).date() == today
    ]
    assert night and all(r.charging_state in (1, 2) for r in night[:3])
    assert night[-1].soc_pct > night[0].soc_pct
    assert all(r.pack_current_a < 0 for r in night[:3])  # negative = charging
    assert VehicleLiveState.objects.get(vehicle=bus).recorded_at == rows[-1].recorded_at


def test_re_running_repeats_the_same_readings(bus_on_duty):
    bus, _parked, end = bus_on_duty
    synthetic_telemetry(Vehicle.objects.filter(pk=bus.pk), end=end, hours=6)
    before = list(TelemetryReading.objects.filter(vehicle=bus).values_list("recorded_at", "soc_pct"))
    synthetic_telemetry(Vehicle.objects.filter(pk=bus.pk), end=end, hours=6)
    assert list(TelemetryReading.objects.filter(vehicle=bus).values_list("recorded_at", "soc_pct")) == before
