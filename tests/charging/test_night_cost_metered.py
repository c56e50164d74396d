"""The night's delivered cost from meter data (issue 19): after a re-plan, what was delivered before it is
priced from the charging sessions the chargers metered, interval by interval at the night's tariff, with the
demand charges billed on the metered site demand by the one rule (``DemandCharges``); the superseded plan's
slots stand in only for vehicles with no meter data. The API and the plan page say which source was used."""

import datetime as dt

import pytest
from django.urls import reverse

from charging.metered_energy import session_kwh_by_slot
from charging.models import ChargingPlan, ChargingSession
from charging.planning import plan_depot_night
from charging.selectors import night_costs, plan_demand_charges
from charging.sessions import charging_session_record
from csms.models import IdToken
from csms.services import Sample, charger_password_issue, meter_values_store, transaction_start, transaction_stop
from tests import factories as f
from tests.charging.test_planning import NEXT_DAY, NIGHT, _bus_with_blocks, _local
from tests.charging.test_planning import depot as depot  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db

# The night's tariff (tests.charging.test_planning.depot): punta 18-22 at 3.00, intermedia 22-24 at 1.80, base
# 0-18 at 1.00 MXN/kWh; a capacity charge on punta demand.
# Bus A, metered 21:00-23:00: 40 kWh by 21:30, 60 by 22:00, 100 at the end (not an even draw).
BUS_A_KWH_PER_SLOT = [20, 20, 10, 10, 10, 10, 10, 10]  # quarter hours from 21:00
BUS_A_ENERGY_COST = (20 + 20 + 10 + 10) * 3.00 + 40 * 1.80
# Bus B, 23:00-01:00, 80 kWh and no readings: an even 10 kWh a quarter hour.
BUS_B_KWH_PER_SLOT = [10] * 8
BUS_B_ENERGY_COST = 40 * 1.80 + 40 * 1.00


def _record(bus, *, start_hour, end_hour, energy_kwh, readings=(), external_id):
    start = _local(NIGHT, start_hour)
    end = _local(NIGHT if end_hour > start_hour else NEXT_DAY, end_hour)
    return charging_session_record(
        source=ChargingSession.Source.CHARGER_GATEWAY,
        external_id=external_id,
        vehicle=bus,
        depot=bus.home_depot,
        started_at=start,
        ended_at=end,
        energy_kwh=energy_kwh,
        meter_readings=readings,
    )[0]


def _bus_a_session(bus):
    readings = [(_local(NIGHT, 21, 30), 40.0), (_local(NIGHT, 22), 60.0)]
    return _record(bus, start_hour=21, end_hour=23, energy_kwh=100.0, readings=readings, external_id="a")


def _replan_at_half_past_four(depot):
    second = plan_depot_night(
        depot=depot, service_night=NIGHT, now=_local(NEXT_DAY, 4, 30), trigger=ChargingPlan.Trigger.EVENT
    )
    return second


def _slot(first, moment) -> int:
    return round((moment - first.horizon_start) / dt.timedelta(minutes=first.slot_minutes))


def _demand_on(first, site_kw_by_slot: dict[int, float], ran: int) -> float:
    """The demand charges of the metered site demand: the first plan's base load plus ``site_kw_by_slot``."""
    base = first.instance.get("base_load_kw") or [0.0] * first.num_slots
    site = [base[s] + site_kw_by_slot.get(s, 0.0) for s in range(ran)]
    return plan_demand_charges(first).cost_mxn(site)


def test_a_night_with_meter_data_prices_what_the_meters_read(depot):
    bus_a, bus_b = _bus_with_blocks(depot), _bus_with_blocks(depot)
    first = plan_depot_night(depot=depot, service_night=NIGHT)
    _bus_a_session(bus_a)
    _record(bus_b, start_hour=23, end_hour=1, energy_kwh=80.0, external_id="b")
    second = _replan_at_half_past_four(depot)

    cost = night_costs([second])[second.pk]

    ran = _slot(first, second.horizon_start)
    at_21, at_23 = _slot(first, _local(NIGHT, 21)), _slot(first, _local(NIGHT, 23))
    slot_h = first.slot_minutes / 60
    kw = {at_21 + i: kwh / slot_h for i, kwh in enumerate(BUS_A_KWH_PER_SLOT)}
    kw |= {at_23 + i: kwh / slot_h for i, kwh in enumerate(BUS_B_KWH_PER_SLOT)}
    demand = _demand_on(first, kw, ran)
    assert demand > 0  # bus A's 80 kW in punta raise the month's peak
    assert cost.delivered_source == "metered"
    assert cost.delivered_kwh == pytest.approx(180.0) and cost.metered_kwh == pytest.approx(180.0)
    assert float(cost.delivered) == pytest.approx(BUS_A_ENERGY_COST + BUS_B_ENERGY_COST + demand, abs=0.01)
    assert cost.night == cost.delivered + second.total_cost


def test_vehicles_without_meter_data_fall_back_to_the_superseded_plans_slots(depot):
    bus_a, bus_b = _bus_with_blocks(depot), _bus_with_blocks(depot)
    first = plan_depot_night(depot=depot, service_night=NIGHT)
    _bus_a_session(bus_a)  # bus B's charger sent nothing
    second = _replan_at_half_past_four(depot)

    cost = night_costs([second])[second.pk]

    ran = _slot(first, second.horizon_start)
    slot_h = first.slot_minutes / 60
    prices = first.instance["energy_price_mxn_per_kwh"]
    planned_b = first.charges.get(vehicle=bus_b).power_kw[:ran]
    assert sum(planned_b) > 0
    at_21 = _slot(first, _local(NIGHT, 21))
    kw = {s: kw for s, kw in enumerate(planned_b)}
    for i, kwh in enumerate(BUS_A_KWH_PER_SLOT):
        kw[at_21 + i] = kw.get(at_21 + i, 0.0) + kwh / slot_h
    planned_b_cost = sum(p * prices[s] for s, p in enumerate(planned_b)) * slot_h
    assert cost.delivered_source == "mixed"
    assert cost.metered_kwh == pytest.approx(100.0)
    assert cost.delivered_kwh == pytest.approx(100.0 + sum(planned_b) * slot_h, abs=0.01)
    assert float(cost.delivered) == pytest.approx(
        BUS_A_ENERGY_COST + planned_b_cost + _demand_on(first, kw, ran), abs=0.01
    )


def test_without_any_meter_data_the_superseded_plan_is_the_source(depot):
    _bus_with_blocks(depot)
    plan_depot_night(depot=depot, service_night=NIGHT)
    second = _replan_at_half_past_four(depot)

    assert night_costs([second])[second.pk].delivered_source == "planned"


def test_a_session_of_another_night_or_after_the_replan_is_not_delivered_before_it(depot):
    bus = _bus_with_blocks(depot)
    plan_depot_night(depot=depot, service_night=NIGHT)
    _record(bus, start_hour=5, end_hour=6, energy_kwh=30.0, external_id="before")  # the morning before the night
    second = _replan_at_half_past_four(depot)

    assert night_costs([second])[second.pk].delivered_source == "planned"


def test_an_ocpp_transactions_meter_values_price_the_night(depot):
    """The whole way: a charger's StartTransaction, MeterValues and StopTransaction become a session with meter
    readings, and the night's cost prices each interval from them (an even draw would cost 240 MXN)."""
    bus = _bus_with_blocks(depot)
    first = plan_depot_night(depot=depot, service_night=NIGHT)
    charger = depot.chargers.order_by("pk").first()
    charger.ocpp_charge_point_id = "CP-1"
    charger.save()
    charge_point, _password = charger_password_issue(charger=charger)
    IdToken.objects.create(token="BUS", vehicle=bus)
    started = transaction_start(
        charge_point_id=charge_point.pk,
        connector_number=1,
        id_tag="BUS",
        timestamp=_local(NIGHT, 21),
        meter_start_wh=5_000.0,
    )
    meter_values_store(
        charge_point_id=charge_point.pk,
        connector_number=1,
        transaction_id=started.transaction_id,
        samples=[
            Sample(_local(NIGHT, 21, 30), 45_000.0, 80_000.0, None),
            Sample(_local(NIGHT, 22), 65_000.0, 40_000.0, None),
        ],
    )
    transaction_stop(
        charge_point_id=charge_point.pk,
        transaction_id=started.transaction_id,
        timestamp=_local(NIGHT, 23),
        meter_stop_wh=105_000.0,
    )
    session = ChargingSession.objects.get(vehicle=bus)
    assert session.energy_kwh == 100.0
    assert session.meter_readings == [
        [_local(NIGHT, 21, 30).astimezone(dt.UTC).isoformat(), 40.0],
        [_local(NIGHT, 22).astimezone(dt.UTC).isoformat(), 60.0],
    ]

    second = _replan_at_half_past_four(depot)
    cost = night_costs([second])[second.pk]

    ran = _slot(first, second.horizon_start)
    at_21 = _slot(first, _local(NIGHT, 21))
    kw = {at_21 + i: kwh / (first.slot_minutes / 60) for i, kwh in enumerate(BUS_A_KWH_PER_SLOT)}
    assert cost.delivered_source == "metered"
    assert float(cost.delivered) == pytest.approx(BUS_A_ENERGY_COST + _demand_on(first, kw, ran), abs=0.01)


def test_the_api_and_the_plan_page_say_which_source_was_used(depot, client, api_client):
    bus_a, bus_b = _bus_with_blocks(depot), _bus_with_blocks(depot)
    plan_depot_night(depot=depot, service_night=NIGHT)
    _bus_a_session(bus_a)
    _record(bus_b, start_hour=23, end_hour=1, energy_kwh=80.0, external_id="b")
    second = _replan_at_half_past_four(depot)
    cost = night_costs([second])[second.pk]
    manager = f.manager_of(depot, is_staff=True)

    api_client.force_authenticate(manager)
    body = api_client.get(f"/api/v1/charging-plans/{second.pk}/").json()["night_cost"]
    assert (body["delivered_source"], body["delivered"]) == ("metered", str(cost.delivered))
    assert (body["metered_kwh"], body["delivered_kwh"]) == (180.0, 180.0)

    client.force_login(manager)
    page = client.get(
        reverse("admin:charging_chargingplan_overview", args=[second.pk]), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert 'data-delivered-source="metered"' in page
    assert "Delivered part: from the chargers' meter data." in page


def test_a_sessions_energy_per_slot_follows_its_meter_readings():
    start = dt.datetime(2026, 11, 24, 4, 0, tzinfo=dt.UTC)
    readings = [
        [(start + dt.timedelta(minutes=30)).isoformat(), 40.0],
        [(start + dt.timedelta(hours=1)).isoformat(), 60.0],
    ]
    by_slot = session_kwh_by_slot(
        started_at=start,
        ended_at=start + dt.timedelta(hours=2),
        energy_kwh=100.0,
        readings=readings,
        grid_start=start - dt.timedelta(minutes=15),
        slot_minutes=15,
        num_slots=10,
    )
    assert by_slot == pytest.approx([0, *BUS_A_KWH_PER_SLOT, 0])
    even = session_kwh_by_slot(
        started_at=start,
        ended_at=start + dt.timedelta(hours=2),
        energy_kwh=100.0,
        readings=[],
        grid_start=start,
        slot_minutes=30,
        num_slots=3,
    )
    assert even == pytest.approx([25, 25, 25])  # the grid ends before the session: its last half hour is left out
