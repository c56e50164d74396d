"""Charges away from any depot, found in telemetry: a mini EV on a 127 V outlet, a bus at a public charger.

The readings go in through the telemetry ingest service, as a vehicle's upload would.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from charging.models import ChargingSession
from charging.sessions import sessions_detect_for_depotless_vehicles, sessions_detect_from_telemetry
from fleet.models import VehicleModel
from fleet.telemetry.ingest import telemetry_ingest
from tests import factories as f

HMO = zoneinfo.ZoneInfo("America/Hermosillo")
EVENING = dt.datetime(2026, 3, 10, 19, 0, tzinfo=HMO)
NEXT_DAY = dt.datetime(2026, 3, 12, 12, 0, tzinfo=HMO)  # "now" for the uploads and the detection
OUTLET_KW = 1.9  # pack side, 127 V outlet
FIVE_MINUTES = dt.timedelta(minutes=5)
HERMOSILLO_DEPOT = (29.0892, -110.9613)
A_STREET_IN_NOGALES = (31.3086, -110.9422)  # ~250 km north


@pytest.fixture
def mini_ev_model():
    return f.VehicleModelFactory(
        manufacturer="Olinia",
        name="Mini",
        kind=VehicleModel.Kind.CAR,
        nominal_pack_kwh=13.0,
        consumption_kwh_per_km=0.10,
        max_ac_kw=3.3,
        max_dc_kw=0,
        charging_taper=[],
    )


def outlet_evening(*, position=A_STREET_IN_NOGALES, with_state=True, with_counter=True) -> list[dict]:
    """Drive 19:00-19:30, park 19:30-19:35, charge 19:40-23:40 at 1.9 kW (SoC 30 -> 88.46), parked until 01:00.

    Readings every 5 minutes; the energy-charged counter starts at 500 kWh.
    """
    readings, counter, soc = [], 500.0, 30.0
    moment = EVENING
    while moment < EVENING + dt.timedelta(hours=6):
        minutes = (moment - EVENING).total_seconds() / 60
        charging = 40 <= minutes <= 280
        if charging and minutes > 40:
            step_kwh = OUTLET_KW * 5 / 60
            counter += step_kwh
            soc += step_kwh / 13.0 * 100
        reading = {
            "recorded_at": moment.isoformat(),
            "soc_pct": round(soc, 4),
            "speed_kmh": 30.0 if minutes < 30 else 0.0,
            "latitude": position[0],
            "longitude": position[1],
        }
        if with_state:
            reading["charging_state"] = "ac" if charging else "none"
        if with_counter:
            reading["energy_charged_kwh"] = round(counter, 6)
        readings.append(reading)
        moment += FIVE_MINUTES
    return readings


def upload(vehicle, readings):
    result = telemetry_ingest(readings=readings, vehicle=vehicle, now=NEXT_DAY)
    assert result.counts["created"] == len(readings), result.as_dict()["errors"]


def detect(vehicle, now=NEXT_DAY):
    return sessions_detect_from_telemetry(
        vehicle=vehicle, since=dt.datetime(2026, 3, 10, tzinfo=HMO), until=dt.datetime(2026, 3, 11, tzinfo=HMO), now=now
    )


def test_a_mini_ev_charging_on_an_outlet_becomes_one_session(db, mini_ev_model):
    car = f.VehicleFactory(model=mini_ev_model, home_depot=None)
    upload(car, outlet_evening())

    (session,) = detect(car)

    assert session.source == ChargingSession.Source.TELEMETRY and session.depot is None
    assert session.started_at == dt.datetime(2026, 3, 10, 19, 40, tzinfo=HMO)
    assert session.ended_at == dt.datetime(2026, 3, 10, 23, 40, tzinfo=HMO)
    # 48 five-minute steps at 1.9 kW = 7.6 kWh into the pack; 7.6 / 0.90 efficiency from the grid.
    assert session.energy_kwh == pytest.approx(7.6 / 0.9, abs=1e-3)
    assert session.start_soc_pct == pytest.approx(30.0)
    assert session.end_soc_pct == pytest.approx(30.0 + 7.6 / 13 * 100, abs=1e-3)
    assert session.max_kw == pytest.approx(OUTLET_KW / 0.9, abs=0.01)
    assert session.cost is None and "default tariff" in session.cost_note


def test_detecting_again_finds_the_same_session(db, mini_ev_model):
    car = f.VehicleFactory(model=mini_ev_model, home_depot=None)
    upload(car, outlet_evening())
    first = detect(car)
    second = detect(car)
    assert [s.pk for s in second] == [s.pk for s in first]
    assert ChargingSession.objects.count() == 1


def test_a_charge_still_going_on_is_left_for_later(db, mini_ev_model):
    car = f.VehicleFactory(model=mini_ev_model, home_depot=None)
    upload(car, outlet_evening()[:40])  # the last upload was at 22:15, mid-charge
    assert detect(car, now=dt.datetime(2026, 3, 10, 22, 17, tzinfo=HMO)) == []
    assert not ChargingSession.objects.exists()


def test_without_charging_state_or_counter_a_rising_soc_at_a_standstill_is_a_charge(db, mini_ev_model):
    car = f.VehicleFactory(model=mini_ev_model, home_depot=None)
    upload(car, outlet_evening(with_state=False, with_counter=False))

    (session,) = detect(car)

    # SoC starts rising after 19:40 (the reading before the first rise) and tops out at 23:40.
    assert session.started_at == dt.datetime(2026, 3, 10, 19, 40, tzinfo=HMO)
    assert session.ended_at == dt.datetime(2026, 3, 10, 23, 40, tzinfo=HMO)
    # SoC rise x the pack's capacity (no pack registered: the model's 13 kWh) / efficiency.
    rise_pct = 7.6 / 13 * 100
    assert session.energy_kwh == pytest.approx(rise_pct / 100 * 13.0 / 0.9, abs=1e-3)


def test_a_bus_charging_at_its_depot_is_not_a_telemetry_session(db):
    depot = f.DepotFactory(latitude=HERMOSILLO_DEPOT[0], longitude=HERMOSILLO_DEPOT[1])
    bus = f.VehicleFactory(organization=depot.organization, home_depot=depot)
    upload(bus, outlet_evening(position=(HERMOSILLO_DEPOT[0] + 0.001, HERMOSILLO_DEPOT[1])))  # ~110 m away
    assert detect(bus) == []


def test_a_bus_charging_far_from_every_depot_is_an_away_session(db):
    depot = f.DepotFactory(latitude=HERMOSILLO_DEPOT[0], longitude=HERMOSILLO_DEPOT[1])
    bus = f.VehicleFactory(organization=depot.organization, home_depot=depot)
    upload(bus, outlet_evening(position=A_STREET_IN_NOGALES))
    (session,) = detect(bus)
    assert session.depot is None and session.vehicle == bus


def test_the_daily_run_covers_every_depotless_car(db, mini_ev_model):
    car = f.VehicleFactory(model=mini_ev_model, home_depot=None)
    upload(car, outlet_evening())
    summary = sessions_detect_for_depotless_vehicles(day=dt.date(2026, 3, 10), now=NEXT_DAY)
    assert summary.startswith("1 charging session")
    assert ChargingSession.objects.filter(vehicle=car).count() == 1


def test_the_nightly_job_finds_a_depot_bus_charging_away_the_day_before(db):
    from charging.sessions import sessions_detect_for_depot_night

    depot = f.DepotFactory(latitude=HERMOSILLO_DEPOT[0], longitude=HERMOSILLO_DEPOT[1])
    bus = f.VehicleFactory(organization=depot.organization, home_depot=depot)
    upload(bus, outlet_evening(position=A_STREET_IN_NOGALES))
    summary = sessions_detect_for_depot_night(depot=depot, night=dt.date(2026, 3, 11))
    assert summary.startswith("1 away charging session")
    assert sessions_detect_for_depot_night(depot=depot, night=dt.date(2026, 3, 12)).startswith("0 ")
    assert ChargingSession.objects.filter(vehicle=bus, depot=None).count() == 1
