"""Planning a depot night from the registry: the plan that the depot staff will read tonight."""

import datetime as dt

import pytest

from charging.models import Alert, ChargingPlan
from charging.planning import build_night, plan_depot_night
from fleet.services import block_assign
from tests import factories as f

pytestmark = pytest.mark.django_db

NIGHT = dt.date(2026, 11, 23)  # a Monday
NEXT_DAY = NIGHT + dt.timedelta(days=1)


@pytest.fixture
def depot():
    depot = f.DepotFactory(grid_limit_kw=400.0)
    tariff = f.TariffFactory(organization=depot.organization)
    season = f.TariffSeasonFactory(tariff=tariff)
    periods = [("base", 0, 18, "1.00"), ("punta", 18, 22, "3.00"), ("intermedia", 22, 0, "1.80")]
    for day_type in ("weekday", "saturday", "sunday_holiday"):
        for period, starts, ends, price in periods:
            f.TariffPeriodFactory(
                season=season,
                day_type=day_type,
                period=period,
                starts_at=dt.time(starts),
                ends_at=dt.time(ends),
                energy_price_per_kwh=price,
            )
    f.DemandChargeFactory(tariff=tariff, applies_in_periods=["punta"])
    depot.tariff = tariff
    depot.save()
    for _ in range(2):
        f.ConnectorFactory(charger=f.ChargerFactory(depot=depot, max_kw=150), connector_id=1, max_kw=150)
    return depot


def _bus_with_blocks(depot, *, evening_return=dt.time(21, 0), morning_departure=dt.time(5, 30), km=200.0):
    bus = f.VehicleFactory(organization=depot.organization, home_depot=depot)
    today = f.BlockFactory(
        depot=depot, service_date=NIGHT, departs_at=dt.time(13, 0), returns_at=evening_return, distance_km=km
    )
    tomorrow = f.BlockFactory(
        depot=depot, service_date=NEXT_DAY, departs_at=morning_departure, returns_at=dt.time(12, 0), distance_km=km
    )
    block_assign(block=today, vehicle=bus, service_date=NIGHT)
    block_assign(block=tomorrow, vehicle=bus, service_date=NEXT_DAY)
    return bus


def test_night_is_read_from_blocks_tariff_and_chargers(depot):
    bus = _bus_with_blocks(depot)

    night = build_night(depot, NIGHT)

    vehicle = night.instance.vehicles[0]
    arrives, departs = night.stays[str(bus.pk)]
    assert arrives.astimezone(depot.zone).time() == dt.time(21, 0)
    assert departs.astimezone(depot.zone).time() == dt.time(5, 30)
    # 200 km x 1.2 kWh/km = 240 kWh of a 350 kWh pack used 10-95 % (297.5 kWh usable), plus a 10 % reserve.
    assert vehicle.required_soc_pct == pytest.approx(240 / 297.5 * 100 + 10)
    assert len(night.instance.chargers) == 2
    prices = night.instance.energy_price_mxn_per_kwh
    assert prices[0] == 1.0 and prices[4 * 6] == 3.0  # 12:00 base, 18:00 punta
    assert night.instance.demand_slots[4 * 6] and not night.instance.demand_slots[0]


def test_plan_charges_every_bus_for_its_block_at_lowest_cost_and_under_the_limit(depot):
    buses = [_bus_with_blocks(depot) for _ in range(2)]

    plan = plan_depot_night(depot=depot, service_night=NIGHT)

    assert plan.status == ChargingPlan.Status.ACTIVE and plan.version == 1
    assert plan.shortfall_kwh == pytest.approx(0, abs=0.05)
    assert plan.peak_kw <= 400 + 1e-6
    charges = {c.vehicle_id: c for c in plan.charges.all()}
    assert set(charges) == {b.pk for b in buses}
    for charge in charges.values():
        assert charge.departure_soc_pct >= charge.required_soc_pct - 0.1
        assert charge.connector is not None
        # Buses return at 21:00, inside punta (18-22): nothing should be bought at 3 MXN/kWh.
        punta_slots = range(4 * 6, 4 * 10)
        assert sum(charge.power_kw[t] for t in punta_slots) == pytest.approx(0, abs=1e-3)
    assert not Alert.objects.filter(depot=depot).exclude(status="resolved").exists()


def test_replan_supersedes_and_keeps_history(depot):
    _bus_with_blocks(depot)
    first = plan_depot_night(depot=depot, service_night=NIGHT)

    second = plan_depot_night(depot=depot, service_night=NIGHT, trigger=ChargingPlan.Trigger.MANUAL)

    first.refresh_from_db()
    assert (first.status, second.status, second.version) == ("superseded", "active", 2)
    assert ChargingPlan.objects.filter(depot=depot, service_night=NIGHT, status="active").count() == 1


def test_night_that_cannot_be_served_returns_shortfalls_and_alerts(depot):
    depot.grid_limit_kw = 20  # 8.5 h x 20 kW cannot give a 200 km bus what it needs
    depot.save()
    bus = _bus_with_blocks(depot)

    plan = plan_depot_night(depot=depot, service_night=NIGHT)

    charge = plan.charges.get()
    assert charge.shortfall_kwh > 0 and charge.shortfall_reason
    alert = Alert.objects.get(kind=Alert.Kind.VEHICLE_NOT_READY)
    assert alert.vehicle == bus and alert.status == "open"

    # Fixing the grid limit and re-planning resolves the alert instead of leaving it open.
    depot.grid_limit_kw = 600
    depot.save()
    plan_depot_night(depot=depot, service_night=NIGHT)
    alert.refresh_from_db()
    assert alert.status == "resolved"


def test_vehicle_with_no_compatible_connector_is_flagged(depot):
    car_model = f.VehicleModelFactory(
        name="Olinia",
        kind="car",
        nominal_pack_kwh=13,
        consumption_kwh_per_km=0.1,
        max_ac_kw=1.9,
        max_dc_kw=0,
        charging_taper=[],
    )
    car = f.VehicleFactory(organization=depot.organization, home_depot=depot, model=car_model)

    plan_depot_night(depot=depot, service_night=NIGHT)

    assert Alert.objects.get(kind=Alert.Kind.NO_COMPATIBLE_CONNECTOR).vehicle == car


@pytest.mark.parametrize("ocpp_version", ["1.6", "2.0.1"])
def test_stored_plan_becomes_valid_ocpp_profiles_matching_the_planned_power(depot, ocpp_version):
    from charging.ocpp import charger_profiles

    _bus_with_blocks(depot)
    plan = plan_depot_night(depot=depot, service_night=NIGHT)
    charge = plan.charges.get()

    requests = charger_profiles(plan, charge.connector.charger, ocpp_version=ocpp_version)  # validates each

    (request,) = requests
    if ocpp_version == "1.6":
        schedule = request["csChargingProfiles"]["chargingSchedule"]
    else:
        (schedule,) = request["chargingProfile"]["chargingSchedule"]
    # The schedule's energy equals the plan's energy for that connector.
    periods = schedule["chargingSchedulePeriod"]
    ends = [p["startPeriod"] for p in periods[1:]] + [schedule["duration"]]
    energy_kwh = sum(p["limit"] / 1000 * (end - p["startPeriod"]) / 3600 for p, end in zip(periods, ends, strict=True))
    assert energy_kwh == pytest.approx(charge.energy_kwh, rel=1e-3)


def _local(day, hour, minute=0):
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.timezone(dt.timedelta(hours=-7)))


def test_replan_after_an_arrival_with_a_low_soc_changes_the_plan(depot):
    bus = _bus_with_blocks(depot, evening_return=dt.time(22, 0))
    first = plan_depot_night(depot=depot, service_night=NIGHT)
    planned_kwh = first.charges.get().energy_kwh

    # Depot staff report the bus back at 22:00 with 15 % SoC, much less than the blocks suggested.
    second = plan_depot_night(
        depot=depot,
        service_night=NIGHT,
        trigger=ChargingPlan.Trigger.EVENT,
        now=_local(NIGHT, 22),
        soc_now_pct={bus.pk: 15.0},
        arrivals={bus.pk: _local(NIGHT, 22)},
    )

    charge = second.charges.get()
    assert second.horizon_start == _local(NIGHT, 22)
    assert charge.energy_kwh > planned_kwh + 1
    assert charge.departure_soc_pct >= charge.required_soc_pct - 0.1


def test_replan_keeps_the_energy_already_delivered(depot):
    _bus_with_blocks(depot)
    first = plan_depot_night(depot=depot, service_night=NIGHT)
    old = first.charges.get()
    now = _local(NEXT_DAY, 4, 30)  # plans charge late (less time at high SoC): by 04:30 it has begun
    now_slot = round((now - first.horizon_start) / dt.timedelta(minutes=first.slot_minutes))
    delivered_kwh = sum(old.power_kw[:now_slot]) * first.slot_minutes / 60
    assert delivered_kwh > 0  # the test means something only if charging had started

    second = plan_depot_night(depot=depot, service_night=NIGHT, now=now, trigger=ChargingPlan.Trigger.EVENT)

    new = second.charges.get()
    assert new.energy_kwh == pytest.approx(old.energy_kwh - delivered_kwh, abs=0.5)
    assert new.departure_soc_pct == pytest.approx(old.departure_soc_pct, abs=0.5)


def test_replan_after_a_connector_fault_moves_the_bus_to_a_working_connector(depot):
    _bus_with_blocks(depot)
    first = plan_depot_night(depot=depot, service_night=NIGHT)
    used = first.charges.get().connector
    used.status = "faulted"
    used.save()

    second = plan_depot_night(depot=depot, service_night=NIGHT, now=_local(NEXT_DAY, 0), trigger="event")

    charge = second.charges.get()
    assert charge.connector is not None and charge.connector != used
    assert charge.shortfall_kwh == pytest.approx(0, abs=0.05)


def test_the_base_loads_own_peak_is_not_charged_to_the_plan(depot):
    # 150 kW of other loads all day: punta demand from them alone is paid whatever the plan does.
    depot.base_load_kw = [150.0] * 24
    depot.save()
    _bus_with_blocks(depot)

    night = build_night(depot, NIGHT)
    plan = plan_depot_night(depot=depot, service_night=NIGHT)

    assert night.instance.month_peak_kw == 150.0
    assert float(plan.demand_cost) == pytest.approx(0.0, abs=0.01)  # the bus charges outside punta


# ---- GDMTH's two demand charges ----------------------------------------------------------------------------


@pytest.fixture
def gdmth_depot(depot):
    """The depot's tariff with GDMTH's distribution charge (every hour) next to the punta capacity charge."""
    f.DemandChargeFactory(tariff=depot.tariff, name="distribution", price_per_kw_month="112.30", applies_in_periods=[])
    f.DemandChargeFactory(tariff=depot.tariff, name="free", price_per_kw_month="0.00", applies_in_periods=[])
    # Other loads: 100 kW, 120 kW at 19:00 (punta), 180 kW at 13:00 (daytime, outside punta).
    depot.base_load_kw = [100.0] * 24
    depot.base_load_kw[19], depot.base_load_kw[13] = 120.0, 180.0
    depot.save()
    return depot


def test_a_tariff_with_both_charges_gives_the_night_both(gdmth_depot):
    _bus_with_blocks(gdmth_depot)

    instance = build_night(gdmth_depot, NIGHT).instance

    capacity, distribution = instance.demand_charges()
    assert capacity.mxn_per_kw == 350.0 and distribution.mxn_per_kw == pytest.approx(112.3)
    # The punta charge is the top-level one (its peak is the plan's peak_kw), on the punta slots.
    assert instance.demand_slots == capacity.slots
    assert capacity.slots[4 * 6] and not capacity.slots[0] and sum(capacity.slots) == 4 * 4
    assert distribution.name == "distribution" and distribution.slots is None
    # Month's peaks so far, with no earlier plan: the base load's own peak in each charge's hours.
    assert capacity.month_peak_kw == 120.0 and distribution.month_peak_kw == 180.0


def test_later_nights_count_each_charges_peak_from_earlier_plans(gdmth_depot):
    for _ in range(2):
        _bus_with_blocks(gdmth_depot)
    earlier_night = NIGHT - dt.timedelta(days=1)

    earlier = plan_depot_night(depot=gdmth_depot, service_night=earlier_night)

    # The daytime base load sets a 180 kW maximum demand anyway: the plan charges under it and pays no new
    # distribution peak (priced on punta alone, the same night peaks at ~400 kW, late, at full power).
    assert max(_site_load_kw(earlier)) == pytest.approx(180.0, abs=1e-2)
    assert float(earlier.demand_cost) == 0.0
    capacity_name = next(c.name for c in gdmth_depot.tariff.demand_charges.all() if c.applies_in_periods)
    assert earlier.month_peaks_kw == {capacity_name: 120.0, "distribution": pytest.approx(180.0, abs=1e-3)}

    # The next night starts from the stored figures; raise them to see they are read, not recomputed.
    ChargingPlan.objects.filter(pk=earlier.pk).update(month_peaks_kw={capacity_name: 140.0, "distribution": 260.0})
    capacity, distribution = build_night(gdmth_depot, NIGHT).instance.demand_charges()
    assert (capacity.month_peak_kw, distribution.month_peak_kw) == (140.0, 260.0)

    # A plan stored before per-charge peaks existed has only peak_kw: it counts for the punta charge and, as a
    # lower bound, for the one on every hour.
    ChargingPlan.objects.filter(pk=earlier.pk).update(month_peaks_kw={}, peak_kw=333.0)
    capacity, distribution = build_night(gdmth_depot, NIGHT).instance.demand_charges()
    assert (capacity.month_peak_kw, distribution.month_peak_kw) == (333.0, 333.0)


def _site_load_kw(plan: ChargingPlan) -> list[float]:
    """Base load + the plan's charging, per slot."""
    load = list(plan.instance["base_load_kw"])
    for charge in plan.charges.all():
        load = [a + b for a, b in zip(load, charge.power_kw, strict=True)]
    return load


def test_a_replan_keeps_the_distribution_peak_the_active_plan_already_counted(gdmth_depot):
    _bus_with_blocks(gdmth_depot)
    first = plan_depot_night(depot=gdmth_depot, service_night=NIGHT)
    # As if an earlier version of tonight's plan had seen 250 kW before the active plan's horizon started.
    stored = first.instance
    stored["additional_demand_charges"][0]["month_peak_kw"] = 250.0
    ChargingPlan.objects.filter(pk=first.pk).update(instance=stored)

    second = plan_depot_night(
        depot=gdmth_depot, service_night=NIGHT, now=_local(NEXT_DAY, 4, 30), trigger=ChargingPlan.Trigger.EVENT
    )

    (distribution,) = second.instance["additional_demand_charges"]
    assert distribution["name"] == "distribution" and distribution["slots"] is None
    assert distribution["month_peak_kw"] == 250.0
    assert second.month_peaks_kw["distribution"] >= 250.0


def test_the_plan_page_explains_what_each_demand_charge_costs_tonight(gdmth_depot, client):
    from django.urls import reverse

    for _ in range(2):
        _bus_with_blocks(gdmth_depot, km=350.0)
    plan = plan_depot_night(depot=gdmth_depot, service_night=NIGHT)
    assert float(plan.demand_cost) > 0  # long blocks: tonight raises a month's peak
    manager = f.manager_of(gdmth_depot, username="gdmth_manager", is_staff=True)
    client.force_login(manager)

    page = client.get(reverse("admin:charging_chargingplan_overview", args=[plan.pk]))

    assert page.status_code == 200
    rows = page.context["demand_charges"]
    assert [r["name"] for r in rows] == list(plan.month_peaks_kw)
    # Billed on the stored load (kW to the watt): the peaks the plan stored, to the watt.
    assert [r["peak_after_kw"] for r in rows] == pytest.approx(list(plan.month_peaks_kw.values()), abs=1e-3)
    assert [r["peak_before_kw"] for r in rows] == [
        plan.instance["month_peak_kw"],
        plan.instance["additional_demand_charges"][0]["month_peak_kw"],
    ]
    # The rows add up to the plan's demand cost (peaks are stored to the watt): the page explains the
    # figure, it does not compute another.
    assert sum(r["cost"] for r in rows) == pytest.approx(float(plan.demand_cost), abs=0.5)
    assert b'id="demand-charges"' in page.content


def _visiting_buses_on_monday_nights(depot):
    """Four Monday nights before: two buses from another depot charged here from 23:00 to 02:00."""
    elsewhere = f.DepotFactory(organization=depot.organization)
    for week in range(1, 5):
        for _ in range(2):
            visitor = f.VehicleFactory(organization=depot.organization, home_depot=elsewhere)
            f.ChargingSessionFactory(
                depot=depot,
                vehicle=visitor,
                started_at=_local(NIGHT - dt.timedelta(weeks=week), 23),
                ended_at=_local(NIGHT - dt.timedelta(weeks=week) + dt.timedelta(days=1), 2),
                energy_kwh=120.0,
            )


def test_replan_keeps_headroom_for_the_visiting_buses_the_depots_history_expects(depot):
    bus = _bus_with_blocks(depot, evening_return=dt.time(22, 0))
    _visiting_buses_on_monday_nights(depot)
    # The depot's own bus charging here is not an unannounced arrival.
    f.ChargingSessionFactory(depot=depot, vehicle=bus, started_at=_local(NIGHT - dt.timedelta(days=1), 23))
    first = plan_depot_night(depot=depot, service_night=NIGHT)
    assert "expected arrivals" not in first.solver_status  # the nightly plan is unchanged

    second = plan_depot_night(depot=depot, service_night=NIGHT, now=_local(NIGHT, 22), trigger="event")

    # two buses x 120 kWh at 23:00 on a Monday, a quarter more for safety (online.DEFAULT_SCALE)
    assert "300.0 kWh of expected arrivals" in second.solver_status
    assert not second.optimal
    charge = second.charges.get()  # only the depot's own bus is planned; the expected ones are not stored
    assert charge.vehicle == bus
    assert charge.departure_soc_pct >= charge.required_soc_pct - 0.1


def test_a_plan_keeping_headroom_is_re_planned_each_slot_so_unused_headroom_goes_to_the_vehicles_there(depot):
    """Headroom kept for arrivals that do not come sits idle until the next event unless the plan is made again:
    beat asks for a re-plan of such a depot once a slot (charging.unscheduled.headroom_replans_request)."""
    from charging.tasks import replan_depot_task
    from charging.unscheduled import HEADROOM_REPLAN_REASON, headroom_replans_request
    from jobs.models import OutboxTask

    _bus_with_blocks(depot, evening_return=dt.time(22, 0))
    _visiting_buses_on_monday_nights(depot)
    without_visitors = f.DepotFactory(organization=depot.organization, time_zone=depot.time_zone)
    for d in (depot, without_visitors):
        plan_depot_night(depot=d, service_night=NIGHT)
    ChargingPlan.objects.update(created_at=_local(NIGHT, 21))
    replans = OutboxTask.objects.filter(task_name=replan_depot_task.name)

    assert headroom_replans_request(now=_local(NIGHT, 21, 10)) == 0  # younger than its 15-minute slot
    assert headroom_replans_request(now=_local(NIGHT, 23)) == 1  # only the depot that has unannounced arrivals
    assert headroom_replans_request(now=_local(NIGHT, 23, 1)) == 1 and replans.count() == 1  # asked once a plan
    [request] = replans
    assert request.args[0] == depot.pk and request.args[2] == HEADROOM_REPLAN_REASON
    assert headroom_replans_request(now=_local(NEXT_DAY, 12)) == 0  # a night that has ended is left alone


def test_a_depot_without_chargers_still_gets_a_plan_that_says_its_buses_are_short():
    """A new depot, its chargers not registered yet: the night is planned (it crashed in the window builder on an
    empty charger array), and a bus that needs energy is reported short rather than the whole plan failing."""
    empty = f.DepotFactory()
    assert plan_depot_night(depot=empty, service_night=NIGHT).status == ChargingPlan.Status.ACTIVE

    no_chargers = f.DepotFactory()
    _bus_with_blocks(no_chargers)
    plan = plan_depot_night(depot=no_chargers, service_night=NIGHT)
    assert plan.status == ChargingPlan.Status.ACTIVE and plan.vehicles_short == 1 and plan.shortfall_kwh > 0


def test_a_replan_uses_the_smaller_search_limits_and_the_nightly_plan_the_full_ones(depot, monkeypatch):
    # A re-plan runs while buses wait: ``auto``'s neighbourhood search gets ``REPLAN_SEARCH`` there,
    # the nightly plan keeps ``NIGHTLY_SEARCH`` (issue 14: minutes of CPU on scarce nights otherwise).
    from charging import optimizer

    _bus_with_blocks(depot)
    seen = []
    real_solve = optimizer.solve

    def spy(*args, **kwargs):
        seen.append(kwargs.get("search", optimizer.NIGHTLY_SEARCH))
        return real_solve(*args, **kwargs)

    monkeypatch.setattr(optimizer, "solve", spy)
    plan_depot_night(depot=depot, service_night=NIGHT)
    plan_depot_night(depot=depot, service_night=NIGHT, now=_local(NIGHT, 22), trigger="event")

    assert seen == [optimizer.NIGHTLY_SEARCH, optimizer.REPLAN_SEARCH]
    assert optimizer.REPLAN_SEARCH.max_passes < optimizer.NIGHTLY_SEARCH.max_passes
    assert optimizer.REPLAN_SEARCH.sub_max_nodes < optimizer.NIGHTLY_SEARCH.sub_max_nodes
