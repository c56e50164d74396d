"""Every planned vehicle says where its arrival SoC and its kWh/km came from, in the plan, the API and the plan
page; a bus still on its block is planned from its live SoC minus what is left of its blocks; consumption is
the median of the season's days once there are enough of them."""

import datetime as dt

import pytest
from drf_spectacular.generators import SchemaGenerator

from charging import measured
from charging.events import depot_event_record
from charging.models import DepotEvent, PlannedCharge
from charging.planning import build_night, plan_depot_night
from charging.selectors import night_event_inputs
from fleet.models import DailyDutyCycle, VehicleLiveState
from fleet.telemetry.selectors import measured_consumption
from tests import factories as f
from tests.charging.test_planning import NIGHT, _bus_with_blocks, depot  # noqa: F401  (fixture)
from tests.fleet.test_admin_support import admin_url

pytestmark = pytest.mark.django_db

CAPACITY_KWH = 350.0  # the factory model's pack, used 10-95 %


def _at(hour: int, minute: int = 0, day: dt.date = NIGHT, zone=None) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone)


def _report_soc(bus, soc_pct: float, at: dt.datetime) -> None:
    VehicleLiveState.objects.update_or_create(
        vehicle=bus, defaults={"recorded_at": at, "received_at": at, "soc_pct": soc_pct}
    )


def _duty_days(vehicle, kwh_per_km: float, days: list[dt.date]) -> None:
    for day in days:
        DailyDutyCycle.objects.create(
            vehicle=vehicle,
            date=day,
            time_zone="America/Hermosillo",
            reading_count=1000,
            distance_km=180.0,
            energy_used_kwh=180.0 * kwh_per_km,
            energy_charged_kwh=0.0,
            kwh_per_km=kwh_per_km,
            capacity_kwh=CAPACITY_KWH,
            equivalent_full_cycles=0.25,
            minutes_above_90_soc=0.0,
        )


def _vehicle_pct(night, bus) -> float:
    usable = night.instance.vehicles[0].arrival_soc_pct
    return 10.0 + usable / 100.0 * 85.0


def test_a_reading_after_the_bus_came_back_is_live_with_its_time(depot):  # noqa: F811
    bus = _bus_with_blocks(depot)  # 13:00-21:00, 200 km
    _report_soc(bus, 77.0, _at(21, 12, zone=depot.zone))

    plan = plan_depot_night(depot=depot, service_night=NIGHT)

    charge = PlannedCharge.objects.get(plan=plan, vehicle=bus)
    assert charge.arrival_soc_pct == pytest.approx(77.0)
    assert charge.sources["arrival_soc"]["kind"] == measured.ARRIVAL_LIVE
    assert dt.datetime.fromisoformat(charge.sources["arrival_soc"]["at"]) == _at(21, 12, zone=depot.zone)
    assert charge.sources["consumption"] == {"kind": "nominal", "kwh_per_km": 1.2}
    assert measured.arrival_source_label(charge.sources["arrival_soc"], depot.zone) == "live 21:12"


def test_a_bus_on_its_block_is_planned_from_its_live_soc_minus_the_rest_of_the_block(depot):  # noqa: F811
    bus = _bus_with_blocks(depot)  # 13:00-21:00, 200 km at 1.2 kWh/km nominal: 240 kWh
    _report_soc(bus, 80.0, _at(17, 0, zone=depot.zone))  # half-way through the block

    night = build_night(depot, NIGHT, now=_at(17, 5, zone=depot.zone))

    # Half of the block is left: 120 kWh of a 350 kWh pack.
    assert _vehicle_pct(night, bus) == pytest.approx(80.0 - 120.0 / CAPACITY_KWH * 100.0)
    source = night.sources[str(bus.pk)]["arrival_soc"]
    assert source["kind"] == measured.ARRIVAL_PREDICTED
    assert source["remaining_kwh"] == pytest.approx(120.0)
    assert source["live_soc_pct"] == 80.0
    assert measured.arrival_source_label(source, depot.zone) == "predicted from live 17:00"


def test_the_rest_of_the_block_is_priced_at_the_buses_measured_consumption(depot):  # noqa: F811
    bus = _bus_with_blocks(depot)
    _duty_days(bus, 0.9, [NIGHT - dt.timedelta(days=d) for d in range(1, 6)])
    _report_soc(bus, 80.0, _at(19, 0, zone=depot.zone))  # a quarter of the block left: 50 km

    night = build_night(depot, NIGHT, now=_at(19, 10, zone=depot.zone))

    assert _vehicle_pct(night, bus) == pytest.approx(80.0 - 50 * 0.9 / CAPACITY_KWH * 100.0)
    consumption = night.sources[str(bus.pk)]["consumption"]
    assert consumption == {
        "kind": "vehicle_median",
        "kwh_per_km": 0.9,
        "days": 5,
        "window_days": 30,
        "season": None,
    }


def test_a_stale_reading_on_the_road_gives_way_to_the_block_estimate(depot, settings):  # noqa: F811
    settings.EVFLEET_LIVE_SOC_MAX_AGE_MINUTES = 15
    bus = _bus_with_blocks(depot)
    _report_soc(bus, 80.0, _at(17, 0, zone=depot.zone))

    night = build_night(depot, NIGHT, now=_at(17, 20, zone=depot.zone))

    assert _vehicle_pct(night, bus) == pytest.approx(95.0 - 240.0 / CAPACITY_KWH * 100.0)
    assert night.sources[str(bus.pk)]["arrival_soc"] == {"kind": "block_estimate", "blocks_kwh": 240.0}

    settings.EVFLEET_LIVE_SOC_MAX_AGE_MINUTES = 30  # configurable: now it is fresh enough
    assert build_night(depot, NIGHT, now=_at(17, 20, zone=depot.zone)).sources[str(bus.pk)]["arrival_soc"]["kind"] == (
        measured.ARRIVAL_PREDICTED
    )


def test_a_fresh_reading_between_two_blocks_counts_only_the_block_still_to_come(depot):  # noqa: F811
    bus = _bus_with_blocks(depot)  # 13:00-21:00
    early = f.BlockFactory(
        depot=depot, service_date=NIGHT, departs_at=dt.time(6, 0), returns_at=dt.time(10, 0), distance_km=100.0
    )
    from fleet.services import block_assign

    block_assign(block=early, vehicle=bus, service_date=NIGHT)
    _report_soc(bus, 90.0, _at(11, 0, zone=depot.zone))  # back from the morning block, before the afternoon one

    night = build_night(depot, NIGHT, now=_at(11, 5, zone=depot.zone))

    assert night.sources[str(bus.pk)]["arrival_soc"]["remaining_kwh"] == pytest.approx(240.0)
    assert _vehicle_pct(night, bus) == pytest.approx(90.0 - 240.0 / CAPACITY_KWH * 100.0)


def test_consumption_is_the_seasons_median_once_enough_days_of_that_season_exist():
    vehicle = f.VehicleFactory()
    early_summer = dt.date(2026, 6, 5)
    spring = [early_summer - dt.timedelta(days=d) for d in range(6, 12)]  # late May: air conditioning off
    last_summer = [dt.date(2025, 7, 1) + dt.timedelta(days=d) for d in range(9)]
    _duty_days(vehicle, 1.0, spring)
    _duty_days(vehicle, 1.4, last_summer)

    # Nine summer days: not enough for a season's median; the last 30 days' median it is.
    first = measured_consumption(vehicle, until=early_summer)
    assert first is not None and (first.kwh_per_km, first.season, first.days) == (1.0, None, 6)

    _duty_days(vehicle, 1.4, [dt.date(2025, 7, 20)])  # the tenth
    second = measured_consumption(vehicle, until=early_summer)
    assert second is not None
    assert (second.kwh_per_km, second.season, second.days, second.window_days) == (1.4, "summer", 10, 365)

    # Later in the summer, ten of this summer's days win over last year's.
    _duty_days(vehicle, 1.25, [dt.date(2026, 6, 10) + dt.timedelta(days=d) for d in range(10)])
    third = measured_consumption(vehicle, until=dt.date(2026, 6, 25))
    assert third is not None
    assert (third.kwh_per_km, third.season, third.days, third.window_days) == (1.25, "summer", 10, 30)


def test_a_vehicle_without_enough_days_of_its_own_takes_its_models_median(depot):  # noqa: F811
    bus = _bus_with_blocks(depot)
    sister = f.VehicleFactory(organization=depot.organization, home_depot=depot, model=bus.model)
    _duty_days(sister, 1.1, [NIGHT - dt.timedelta(days=d) for d in range(1, 5)])

    source = build_night(depot, NIGHT).sources[str(bus.pk)]["consumption"]

    assert source["kind"] == "model_median" and source["kwh_per_km"] == 1.1 and source["days"] == 4
    assert measured.consumption_source_label(source) == "1.10 kWh/km: model's median over 4 days"


def test_a_soc_reported_by_a_depot_event_is_recorded_as_reported_at_its_time(depot):  # noqa: F811
    bus = _bus_with_blocks(depot)
    occurred = _at(21, 5, zone=depot.zone)
    depot_event_record(
        depot=depot,
        kind=DepotEvent.Kind.VEHICLE_ARRIVED,
        client_event_id="gate-1",
        occurred_at=occurred,
        vehicle=bus,
        soc_pct=61.0,
    )

    plan = plan_depot_night(depot=depot, service_night=NIGHT, **night_event_inputs(depot, NIGHT))

    charge = PlannedCharge.objects.get(plan=plan, vehicle=bus)
    assert charge.arrival_soc_pct == pytest.approx(61.0)
    assert charge.sources["arrival_soc"]["kind"] == measured.ARRIVAL_REPORTED
    assert dt.datetime.fromisoformat(charge.sources["arrival_soc"]["at"]) == occurred


def test_the_plan_api_shows_each_vehicles_sources_and_old_plans_stay_readable(two_depots, api_client):
    home, bus = two_depots["depot_a"], two_depots["vehicle_a"]
    f.ConnectorFactory(charger=f.ChargerFactory(depot=home), connector_id=1)
    _report_soc(bus, 70.0, _at(20, 45, zone=home.zone))
    plan = plan_depot_night(depot=home, service_night=NIGHT)
    api_client.force_authenticate(two_depots["staff_a"])

    body = api_client.get(f"/api/v1/charging-plans/{plan.pk}/").json()

    (charge,) = body["charges"]
    arrival = charge["sources"]["arrival_soc"]
    assert arrival["kind"] == "live" and arrival["label"] == "live 20:45"
    assert dt.datetime.fromisoformat(arrival["at"]) == _at(20, 45, zone=home.zone)
    assert charge["sources"]["consumption"]["kind"] == "nominal"
    one = api_client.get(f"/api/v1/vehicle-plans/{bus.pk}/", {"service_night": NIGHT.isoformat()}).json()
    assert one["sources"]["arrival_soc"]["label"] == "live 20:45"

    PlannedCharge.objects.filter(plan=plan).update(sources={})  # a plan stored before sources were recorded
    old = api_client.get(f"/api/v1/charging-plans/{plan.pk}/").json()
    assert old["charges"][0]["sources"] == {"arrival_soc": None, "consumption": None}


def test_the_sources_are_documented_in_the_openapi_schema():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]

    def resolve(field: dict) -> dict:
        ref = field.get("$ref") or (field.get("allOf") or [{}])[0].get("$ref", "")
        return components[ref.rsplit("/", 1)[-1]] if ref else field

    sources = resolve(components["PlannedCharge"]["properties"]["sources"])["properties"]
    arrival = resolve(sources["arrival_soc"])["properties"]
    assert set(resolve(arrival["kind"])["enum"]) == {"live", "predicted_from_live", "block_estimate", "reported"}
    assert {"at", "label", "live_soc_pct", "remaining_kwh"} <= set(arrival)
    consumption = resolve(sources["consumption"])["properties"]
    assert set(resolve(consumption["kind"])["enum"]) == {"vehicle_median", "model_median", "nominal"}
    assert {"kwh_per_km", "days", "season"} <= set(consumption)


def test_the_plan_page_lists_the_sources_in_the_depots_time(two_depots, client):
    home, bus = two_depots["depot_a"], two_depots["vehicle_a"]
    f.ConnectorFactory(charger=f.ChargerFactory(depot=home), connector_id=1)
    _report_soc(bus, 70.0, _at(20, 45, zone=dt.UTC))  # 13:45 in Hermosillo (UTC-7)
    _duty_days(bus, 1.05, [NIGHT - dt.timedelta(days=d) for d in range(1, 4)])
    plan = plan_depot_night(depot=home, service_night=NIGHT)
    client.force_login(two_depots["manager_a"])

    page = client.get(admin_url(plan)).content.decode()

    assert 'id="plan-value-sources"' in page
    assert "live 13:45" in page and "MST" in page
    assert "1.05 kWh/km: vehicle&#x27;s median over 3 days" in page
