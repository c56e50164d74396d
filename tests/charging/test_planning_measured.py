"""Planning reads what the vehicles measured: a fresh live SoC is the arrival SoC, and measured consumption
prices the next block. These tests fail if planning stops reading telemetry (the dead-import bug of 2026-11)."""

import datetime as dt

import pytest

from charging.planning import build_night
from fleet.models import DailyDutyCycle, VehicleLiveState
from tests.charging.test_planning import NIGHT, _bus_with_blocks, depot  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


def _usable_pct(soc_pct: float) -> float:
    return (soc_pct - 10.0) / (95.0 - 10.0) * 100.0  # the factory model's usable window is 10-95 %


def _report_soc(bus, soc_pct: float, at: dt.datetime) -> None:
    VehicleLiveState.objects.update_or_create(
        vehicle=bus, defaults={"recorded_at": at, "received_at": at, "soc_pct": soc_pct}
    )


def test_a_soc_reported_after_the_bus_came_back_is_its_arrival_soc(depot):  # noqa: F811
    bus = _bus_with_blocks(depot)  # back at 21:00 after 200 km
    back = dt.datetime.combine(NIGHT, dt.time(21, 10), tzinfo=depot.zone)
    estimated = build_night(depot, NIGHT).instance.vehicles[0].arrival_soc_pct

    _report_soc(bus, 77.0, back)
    measured = build_night(depot, NIGHT).instance.vehicles[0].arrival_soc_pct

    assert measured == pytest.approx(_usable_pct(77.0))
    assert measured != pytest.approx(estimated)


def test_a_soc_reported_before_the_last_block_ended_is_not_taken_as_the_arrival(depot):  # noqa: F811
    bus = _bus_with_blocks(depot)
    estimated = build_night(depot, NIGHT).instance.vehicles[0].arrival_soc_pct

    _report_soc(bus, 77.0, dt.datetime.combine(NIGHT, dt.time(14, 0), tzinfo=depot.zone))  # still on its block

    assert build_night(depot, NIGHT).instance.vehicles[0].arrival_soc_pct == pytest.approx(estimated)


def test_the_next_block_is_priced_at_the_buses_measured_consumption(depot):  # noqa: F811
    bus = _bus_with_blocks(depot, km=200.0)
    nominal = build_night(depot, NIGHT).instance.vehicles[0].required_soc_pct  # 1.2 kWh/km nominal
    for days_ago in range(1, 6):
        DailyDutyCycle.objects.create(
            vehicle=bus,
            date=NIGHT - dt.timedelta(days=days_ago),
            time_zone=depot.time_zone,
            reading_count=1000,
            distance_km=180.0,
            energy_used_kwh=180.0 * 0.9,
            energy_charged_kwh=0.0,
            kwh_per_km=0.9,
            capacity_kwh=350.0,
            equivalent_full_cycles=0.25,
            minutes_above_90_soc=0.0,
        )

    required = build_night(depot, NIGHT).instance.vehicles[0].required_soc_pct

    # 200 km x 0.9 kWh/km of 297.5 usable kWh, plus the 10 % reserve (nominal: 1.2 kWh/km).
    assert required == pytest.approx(200 * 0.9 / 297.5 * 100 + 10)
    assert required < nominal
