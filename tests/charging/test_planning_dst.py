"""A depot in a zone with daylight saving (Europe/Berlin) plans the nights the clocks change.

The night runs noon to noon on the depot's wall clock: 23 hours when the clocks go forward (29 March 2026,
02:00 CET -> 03:00 CEST), 25 when they go back (25 October 2026, 03:00 CEST -> 02:00 CET). Expected slots are
worked out by hand in UTC below, not by the code under test.
"""

from __future__ import annotations

import datetime as dt

import pytest

from charging.admin_views import _slot_labels
from charging.planning import build_night, night_horizon, plan_depot_night
from fleet.services import block_assign
from tests import factories as f

pytestmark = pytest.mark.django_db

SPRING = dt.date(2026, 3, 28)  # the night into Sunday 29 March: 23 hours
AUTUMN = dt.date(2026, 10, 24)  # the night into Sunday 25 October: 25 hours
PLAIN = dt.date(2026, 11, 23)
BASE_LOAD_KW = [float(10 + hour) for hour in range(24)]  # 10 kW at 00:00, 11 at 01:00, ... : the hour is readable


@pytest.fixture
def berlin():
    depot = f.DepotFactory(time_zone="Europe/Berlin", grid_limit_kw=400.0, base_load_kw=BASE_LOAD_KW)
    f.ConnectorFactory(charger=f.ChargerFactory(depot=depot, max_kw=150), connector_id=1, max_kw=150)
    return depot


def _bus(depot, night: dt.date):
    bus = f.VehicleFactory(organization=depot.organization, home_depot=depot)
    evening = f.BlockFactory(
        depot=depot, service_date=night, departs_at=dt.time(13, 0), returns_at=dt.time(21, 0), distance_km=150
    )
    morning = f.BlockFactory(
        depot=depot,
        service_date=night + dt.timedelta(days=1),
        departs_at=dt.time(5, 30),
        returns_at=dt.time(12, 0),
        distance_km=150,
    )
    block_assign(block=evening, vehicle=bus, service_date=night)
    block_assign(block=morning, vehicle=bus, service_date=night + dt.timedelta(days=1))
    return bus


@pytest.mark.parametrize(
    ("night", "slots", "start_utc", "end_utc"),
    [
        (SPRING, 92, dt.datetime(2026, 3, 28, 11, 0, tzinfo=dt.UTC), dt.datetime(2026, 3, 29, 10, 0, tzinfo=dt.UTC)),
        (AUTUMN, 100, dt.datetime(2026, 10, 24, 10, 0, tzinfo=dt.UTC), dt.datetime(2026, 10, 25, 11, 0, tzinfo=dt.UTC)),
        (PLAIN, 96, dt.datetime(2026, 11, 23, 11, 0, tzinfo=dt.UTC), dt.datetime(2026, 11, 24, 11, 0, tzinfo=dt.UTC)),
    ],
)
def test_the_night_is_noon_to_noon_on_the_depot_wall_clock(berlin, night, slots, start_utc, end_utc):
    horizon = night_horizon(berlin, night)

    assert horizon.num_slots == slots
    assert horizon.start == start_utc and horizon.end == end_utc
    starts = [moment.astimezone(dt.UTC) for moment in horizon.slot_starts()]  # real time, not the wall clock
    assert all(b - a == dt.timedelta(minutes=15) for a, b in zip(starts, starts[1:], strict=False))
    assert starts[-1] + dt.timedelta(minutes=15) == end_utc


def test_the_spring_night_skips_two_oclock_and_reads_arrivals_in_real_time(berlin):
    bus = _bus(berlin, SPRING)

    night = build_night(berlin, SPRING)

    # 02:00 CET is 01:00 UTC, 14 hours after the 11:00 UTC start: slot 56 starts at 03:00 CEST.
    base = night.instance.base_load_kw
    assert base[55] == BASE_LOAD_KW[1] and base[56] == BASE_LOAD_KW[3]
    assert BASE_LOAD_KW[2] not in base  # no 02:00 that night
    vehicle = night.instance.vehicles[0]
    assert vehicle.id == str(bus.pk)
    # Back at 21:00 CET (20:00 UTC, slot 36); leaves at 05:30 CEST (03:30 UTC, 16.5 h after the start: slot 66).
    assert (vehicle.arrival_slot, vehicle.departure_slot) == (36, 66)


def test_the_autumn_night_has_two_oclock_twice(berlin):
    _bus(berlin, AUTUMN)

    night = build_night(berlin, AUTUMN)

    # 02:00 CEST is 00:00 UTC (slot 56), 02:00 CET is 01:00 UTC (slot 60); 03:00 CET is 02:00 UTC (slot 64).
    base = night.instance.base_load_kw
    assert [base[i] for i in (55, 56, 59, 60, 63, 64)] == [BASE_LOAD_KW[h] for h in (1, 2, 2, 2, 2, 3)]
    vehicle = night.instance.vehicles[0]
    # Back at 21:00 CEST (19:00 UTC, slot 36); leaves at 05:30 CET (04:30 UTC, 18.5 h after the start: slot 74).
    assert (vehicle.arrival_slot, vehicle.departure_slot) == (36, 74)


@pytest.mark.parametrize(("night", "slots", "twos"), [(SPRING, 92, 0), (AUTUMN, 100, 8)])
def test_a_dst_night_is_planned_and_shown_with_its_real_hours(berlin, night, slots, twos):
    _bus(berlin, night)

    plan = plan_depot_night(depot=berlin, service_night=night)

    assert plan.num_slots == slots
    assert plan.shortfall_kwh == pytest.approx(0, abs=0.05)
    (charge,) = plan.charges.all()
    assert len(charge.power_kw) == slots
    labels = _slot_labels(plan)
    assert len(labels) == slots and labels[0] == "12:00" and labels[-1] == "11:45"
    assert sum(1 for label in labels if label.startswith("02:")) == twos  # 02:00-02:45 skipped, or twice
