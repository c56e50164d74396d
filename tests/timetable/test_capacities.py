"""The assignment reads every bus's capacity in one query (``batteries.selectors.vehicle_capacities``): the
same figures as ``vehicle_capacity_kwh`` one vehicle at a time."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from batteries.selectors import vehicle_capacities, vehicle_capacity_kwh
from fleet.models import Vehicle
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_batched_capacities_equal_the_one_at_a_time_rule(django_assert_num_queries):
    org = f.OrganizationFactory()
    depot = f.DepotFactory(organization=org)
    now = timezone.now()

    def bus(nominal: float = 350.0, as_new: float | None = None):
        vehicle = f.VehicleFactory(organization=org, home_depot=depot)
        pack = f.BatteryPackFactory(organization=org, nominal_kwh=nominal, as_new_capacity_kwh=as_new)
        f.PackInstallationFactory(pack=pack, vehicle=vehicle)
        return vehicle, pack

    no_pack = f.VehicleFactory(organization=org, home_depot=depot)
    observed, pack = bus(as_new=360.0)
    f.HealthObservationFactory(pack=pack, soh_pct=91.0, observed_at=now - dt.timedelta(days=40))
    f.HealthObservationFactory(pack=pack, soh_pct=88.0, observed_at=now - dt.timedelta(days=2))
    forecast_newer, pack = bus()
    f.HealthObservationFactory(pack=pack, soh_pct=90.0, observed_at=now - dt.timedelta(days=60))
    f.SoHForecastFactory(pack=pack, soh_now_pct=86.5, as_of=timezone.localdate() - dt.timedelta(days=1))
    observation_newer, pack = bus()
    f.SoHForecastFactory(pack=pack, soh_now_pct=70.0, as_of=timezone.localdate() - dt.timedelta(days=30))
    f.HealthObservationFactory(pack=pack, soh_pct=93.0, observed_at=now - dt.timedelta(days=1))
    implausible, pack = bus()
    f.SoHForecastFactory(pack=pack, soh_now_pct=float("nan"))
    unknown, _pack = bus(nominal=280.0)

    vehicles = list(Vehicle.objects.filter(home_depot=depot).select_related("model"))
    with django_assert_num_queries(1):
        batched = vehicle_capacities(vehicles)
    for vehicle in vehicles:
        assert batched[vehicle.pk].capacity_kwh == pytest.approx(vehicle_capacity_kwh(vehicle))
    assert batched[observed.pk].soh_pct == 88.0 and batched[observed.pk].capacity_kwh == pytest.approx(360 * 0.88)
    assert batched[forecast_newer.pk].soh_pct == 86.5
    assert batched[observation_newer.pk].soh_pct == 93.0
    assert batched[implausible.pk].soh_pct == 100.0
    assert batched[unknown.pk].capacity_kwh == pytest.approx(280.0)
    assert not batched[no_pack.pk].has_pack
