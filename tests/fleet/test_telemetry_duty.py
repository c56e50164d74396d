"""Daily duty cycles: a small hand-computed day, recomputation, the nightly task and the scoped API."""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo

import numpy as np
import pytest

from fleet.models import DailyDutyCycle
from fleet.tasks import telemetry_duty_cycles
from fleet.telemetry.duty import duty_cycle_compute, duty_cycles_compute, duty_cycles_for_depot_night
from fleet.telemetry.ingest import telemetry_ingest
from fleet.telemetry.selectors import (
    READING_MEASUREMENTS,
    _reading_arrays_portable,
    reading_arrays,
    vehicle_readings,
)
from tests import factories as f
from tests.fleet.test_telemetry_support import DUTY_URL, URLCONF, fast_password_hashing

pytestmark = pytest.mark.django_db
_fast_hashing = pytest.fixture(autouse=True)(fast_password_hashing)
HERMOSILLO = zoneinfo.ZoneInfo("America/Hermosillo")  # UTC-7 all year
DAY = dt.date(2026, 3, 10)


def local(hour: int, minute: int, day: dt.date = DAY) -> str:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=HERMOSILLO).isoformat()


def row(at, soc, odo, discharged, charged, current, temp, **extra):
    return {
        "recorded_at": at,
        "soc_pct": soc,
        "odometer_km": odo,
        "energy_discharged_kwh": discharged,
        "energy_charged_kwh": charged,
        "pack_current_a": current,
        "pack_voltage_v": 600.0,
        "pack_temp_c": temp,
        **extra,
    }


# A morning pull-out: three samples a minute apart, a 28-minute gap, then regenerative braking.
MORNING = [
    row(local(6, 0), 95.0, 1000.0, 100.0, 50.0, 0.0, 25.0, pack_temp_max_c=26.0),
    row(local(6, 1), 92.0, 1001.0, 101.5, 50.0, 100.0, 27.0),
    row(local(6, 2), 88.0, 1002.5, 103.0, 50.2, 300.0, 30.0, pack_temp_max_c=33.0),
    row(local(6, 30), 80.0, 1010.0, 110.0, 50.2, -150.0, 29.0),
    row(local(6, 31), 82.0, 1010.0, 110.0, 52.0, -200.0, 28.0),
]
# Readings just outside the local day: they belong to the days before and after.
OUTSIDE = [
    row(local(23, 30, DAY - dt.timedelta(days=1)), 50.0, 900.0, 10.0, 5.0, 500.0, 45.0),
    row(local(0, 10, DAY + dt.timedelta(days=1)), 50.0, 2000.0, 900.0, 5.0, 500.0, 45.0),
]


@pytest.fixture
def bus():
    depot = f.DepotFactory(time_zone="America/Hermosillo")
    vehicle = f.VehicleFactory(organization=depot.organization, home_depot=depot)
    f.PackInstallationFactory(vehicle=vehicle, pack__organization=vehicle.organization)  # 350 kWh, 544 Ah
    telemetry_ingest(readings=MORNING + OUTSIDE, vehicle=vehicle, now=dt.datetime(2026, 3, 12, tzinfo=dt.UTC))
    return vehicle


def test_a_day_is_summarised_as_computed_by_hand(bus):
    cycle = duty_cycle_compute(vehicle=bus, day=DAY)

    assert cycle.reading_count == 5
    assert cycle.time_zone == "America/Hermosillo"
    assert cycle.distance_km == pytest.approx(10.0)  # 1 + 1.5 + 7.5 + 0
    assert cycle.energy_used_kwh == pytest.approx(10.0)  # 1.5 + 1.5 + 7
    assert cycle.energy_charged_kwh == pytest.approx(2.0)  # 0.2 + 1.8
    assert cycle.kwh_per_km == pytest.approx(1.0)
    assert cycle.equivalent_full_cycles == pytest.approx(12.0 / 700.0)
    assert (cycle.soc_min_pct, cycle.soc_max_pct) == (80.0, 95.0)
    # Left hold over the minute-long intervals; the 28-minute gap counts no time.
    assert cycle.soc_mean_pct == pytest.approx((95 + 92 + 80) / 3)
    assert cycle.minutes_above_90_soc == pytest.approx(2.0)
    assert cycle.pack_temp_mean_c == pytest.approx((25 + 27 + 29) / 3)
    assert cycle.pack_temp_max_c == 33.0
    assert cycle.max_discharge_c_rate == pytest.approx(300 / 544)
    assert cycle.max_charge_c_rate == pytest.approx(200 / 544)


def test_recomputing_replaces_the_day(bus):
    duty_cycle_compute(vehicle=bus, day=DAY)
    late = row(local(7, 0), 70.0, 1030.0, 130.0, 52.0, 50.0, 28.0)  # a late upload of the same day
    telemetry_ingest(readings=[late], vehicle=bus, now=dt.datetime(2026, 3, 12, tzinfo=dt.UTC))

    cycle = duty_cycle_compute(vehicle=bus, day=DAY)

    assert DailyDutyCycle.objects.filter(vehicle=bus).count() == 1
    assert cycle.distance_km == pytest.approx(30.0)
    assert cycle.reading_count == 6


def test_a_day_without_readings_stores_nothing(bus):
    assert duty_cycle_compute(vehicle=bus, day=DAY - dt.timedelta(days=5)) is None
    assert not DailyDutyCycle.objects.exists()


def test_the_nightly_task_computes_each_vehicles_local_yesterday(bus):
    # The task body, in-process: the round trip through Redis and a worker is tested with the jobs.
    stored = telemetry_duty_cycles.apply(kwargs={"now": "2026-03-11T12:00:00+00:00"}).get()

    assert stored == 1
    assert DailyDutyCycle.objects.get(vehicle=bus).date == DAY


def test_the_depot_night_job_finalises_yesterday_and_starts_today(bus):
    summary = duty_cycles_for_depot_night(depot=bus.home_depot, night=DAY + dt.timedelta(days=1))

    assert summary == "1 vehicle-days on 2026-03-10, 1 provisional on 2026-03-11"
    assert sorted(DailyDutyCycle.objects.values_list("date", flat=True)) == [DAY, DAY + dt.timedelta(days=1)]


def test_a_depot_less_car_uses_the_default_time_zone():
    car = f.VehicleFactory(home_depot=None)
    telemetry_ingest(
        readings=[row(local(0, 30), 60.0, 10.0, 1.0, 1.0, 5.0, 20.0)],
        vehicle=car,
        now=dt.datetime(2026, 3, 12, tzinfo=dt.UTC),
    )

    assert duty_cycle_compute(vehicle=car, day=DAY).time_zone == "America/Hermosillo"


def service_day(seed: int, *, counters: bool = True, gap: bool = True) -> list[dict]:
    """A bus's day as it uploads it: a reading every ~30 s (jittered to the millisecond) from 05:00 to 23:00
    local, driving and charging; some measurements missing, a 40-minute silence, an odometer swap."""
    rng = random.Random(seed)
    at = dt.datetime.combine(DAY, dt.time(5, 0), tzinfo=HERMOSILLO)
    soc, odometer, discharged, charged = 92.0, 120_000.0 + seed, 40_000.0, 38_000.0
    readings = []
    while at.hour < 23:
        driving = at.hour < 19
        current = rng.uniform(-80, 320) if driving else -rng.uniform(150, 250)
        speed = rng.uniform(0, 45) if driving and rng.random() > 0.2 else 0.0
        odometer += speed * 30 / 3600
        soc = min(100.0, max(5.0, soc - current * 0.0015))
        discharged += max(current, 0) * 0.65 * 30 / 3600
        charged += max(-current, 0) * 0.65 * 30 / 3600
        reading = {
            "recorded_at": at.isoformat(),
            "soc_pct": round(soc, 1),
            "odometer_km": odometer,
            "speed_kmh": speed,
            "pack_voltage_v": rng.uniform(600, 690),
            "pack_current_a": current,
            "pack_temp_c": rng.uniform(24, 38),
            "pack_temp_max_c": rng.uniform(30, 42) if rng.random() < 0.3 else None,
        }
        if counters:
            reading |= {"energy_discharged_kwh": discharged, "energy_charged_kwh": charged}
        for name in ("soc_pct", "pack_current_a", "pack_temp_c", "pack_voltage_v"):
            if rng.random() < 0.03:  # a measurement the BMS did not report this time
                reading[name] = None
        readings.append(reading)
        if gap and at.hour == 12 and at.minute < 1:
            at += dt.timedelta(minutes=40)  # the modem lost the network
        if at.hour == 15 and at.minute < 1 and seed % 2:
            odometer = 12.0  # the odometer swapped: its decrease counts nothing
        at += dt.timedelta(seconds=30, milliseconds=rng.randint(-400, 400))
    return readings


def test_the_batched_night_job_stores_exactly_what_the_one_vehicle_path_stores():
    depot = f.DepotFactory(time_zone="America/Hermosillo")
    with_pack = f.VehicleFactory(organization=depot.organization, home_depot=depot)
    f.PackInstallationFactory(vehicle=with_pack, pack__organization=with_pack.organization)
    buses = [
        with_pack,  # its pack's Ah for the C-rates
        f.VehicleFactory(organization=depot.organization, home_depot=depot),  # Ah from the median voltage
        f.VehicleFactory(organization=depot.organization, home_depot=depot),  # no counters: the power integral
        f.VehicleFactory(organization=depot.organization, home_depot=depot),  # no gap
    ]
    silent = f.VehicleFactory(organization=depot.organization, home_depot=depot)  # no readings at all
    car = f.VehicleFactory(home_depot=None)  # the default time zone, its own batch
    days = [service_day(1), service_day(2), service_day(3, counters=False), service_day(4, gap=False)]
    for vehicle, readings in zip([*buses, car], [*days, service_day(5)], strict=True):
        telemetry_ingest(readings=readings, vehicle=vehicle, now=dt.datetime(2026, 3, 12, tzinfo=dt.UTC))
    vehicles = [*buses, silent, car]
    fields = [name for name in (field.name for field in DailyDutyCycle._meta.concrete_fields) if name != "id"]
    fields.remove("computed_at")

    one_by_one = [duty_cycle_compute(vehicle=vehicle, day=DAY) for vehicle in vehicles]
    expected = sorted(DailyDutyCycle.objects.values_list(*fields))
    DailyDutyCycle.objects.all().delete()
    stored = duty_cycles_compute(day=DAY, vehicle_ids=[vehicle.pk for vehicle in vehicles])

    assert [cycle is None for cycle in one_by_one] == [False, False, False, False, True, False]
    assert stored == 5
    assert sorted(DailyDutyCycle.objects.values_list(*fields)) == expected  # float for float, not approximately
    assert len({row[fields.index("reading_count")] for row in expected}) > 1  # the gap and the silence differ


def test_a_vehicles_readings_come_as_arrays_in_time_order_with_nan_for_what_was_not_reported(bus):
    since = dt.datetime.combine(DAY, dt.time(0), tzinfo=HERMOSILLO)

    readings = vehicle_readings(bus, since=since, until=since + dt.timedelta(days=1), measurements=("pack_temp_max_c",))

    assert list(readings) == ["t_s", "pack_temp_max_c"]
    assert readings["t_s"].tolist() == [dt.datetime.fromisoformat(r["recorded_at"]).timestamp() for r in MORNING]
    assert readings["pack_temp_max_c"][[0, 2]].tolist() == [26.0, 33.0]
    assert np.isnan(readings["pack_temp_max_c"][[1, 3, 4]]).all()
    with pytest.raises(ValueError, match="Not a reading measurement"):
        vehicle_readings(bus, since=since, measurements=("vehicle_id; DROP TABLE x",))


def test_the_orm_reader_for_sqlite_gives_the_binary_readers_arrays_value_for_value(bus):
    """The embedded SQLite default (``make demo`` with no server) reads readings through the ORM; the night's duty
    cycles and the admin's charts must get exactly what PostgreSQL's binary fetch gives."""
    other = f.VehicleFactory(organization=bus.organization, home_depot=bus.home_depot)
    telemetry_ingest(readings=service_day(7), vehicle=other, now=dt.datetime(2026, 3, 12, tzinfo=dt.UTC))
    since = dt.datetime.combine(DAY, dt.time(0), tzinfo=HERMOSILLO)

    binary = reading_arrays([other.pk, bus.pk], start=since)
    portable = _reading_arrays_portable([other.pk, bus.pk], start=since, end=None, measurements=READING_MEASUREMENTS)

    assert len(binary) > len(MORNING)  # both vehicles, every measurement
    assert binary.vehicle_id.tolist() == portable.vehicle_id.tolist()
    assert binary.t_s.tolist() == portable.t_s.tolist()
    for name in READING_MEASUREMENTS:
        np.testing.assert_array_equal(binary.values[name], portable.values[name])  # NaN where NaN
    assert np.isnan(portable.values["pack_temp_max_c"]).any()


def test_the_batched_job_replaces_an_earlier_duty_cycle(bus):
    duty_cycle_compute(vehicle=bus, day=DAY)
    DailyDutyCycle.objects.update(distance_km=999.0)

    assert duty_cycles_compute(day=DAY, vehicle_ids=[bus.pk]) == 1
    assert DailyDutyCycle.objects.get().distance_km == pytest.approx(10.0)


@pytest.mark.urls(URLCONF)
def test_duty_cycles_are_listed_by_vehicle_and_date_within_the_users_depots(api_client, two_depots):
    for vehicle in (two_depots["vehicle_a"], two_depots["vehicle_b"]):
        telemetry_ingest(readings=MORNING, vehicle=vehicle, now=dt.datetime(2026, 3, 12, tzinfo=dt.UTC))
        duty_cycle_compute(vehicle=vehicle, day=DAY)
    api_client.force_authenticate(two_depots["staff_a"])

    listed = api_client.get(DUTY_URL, {"date_from": "2026-03-10", "date_to": "2026-03-10"}).json()["results"]
    filtered_out = api_client.get(DUTY_URL, {"date_from": "2026-03-11"}).json()["results"]
    other = DailyDutyCycle.objects.get(vehicle=two_depots["vehicle_b"])

    assert [(r["vehicle"], r["date"]) for r in listed] == [(two_depots["vehicle_a"].pk, "2026-03-10")]
    assert listed[0]["distance_km"] == pytest.approx(10.0)
    assert filtered_out == []
    assert api_client.get(f"{DUTY_URL}{other.pk}/").status_code == 404
