"""One demand-charge rule: the plan page, the monthly report and the optimizer's evaluator bill a night alike.

The depot's tariff has GDMTH's two demand charges: capacity on *punta* (a window) and distribution on every
hour (plain). The night is the month's first and the depot has no other load, so nothing is paid yet: the
night's demand charges are the month's, and the monthly report, billing the same load from sessions, must
come to the same figures as the plan page and the evaluator.
"""

import datetime as dt

import pytest
from django.urls import reverse

from charging import optimizer
from charging.models import ChargingPlan
from charging.planning import plan_depot_night
from fleet.services import block_assign
from tests import factories as f
from tests.charging.test_sessions import gdmth_tariff

pytestmark = pytest.mark.django_db

NIGHT = dt.date(2026, 3, 2)  # a Monday, the month's first weekday night
MONTHLY = reverse("v1:report-monthly")
CONNECTOR_KW = 50.0  # slow enough that the buses must charge in punta too


@pytest.fixture
def night():
    depot = f.DepotFactory(grid_limit_kw=400.0, base_load_kw=[0.0] * 24)
    depot.tariff = gdmth_tariff(depot.organization)
    depot.save()
    buses = []
    for _ in range(2):
        f.ConnectorFactory(charger=f.ChargerFactory(depot=depot, max_kw=CONNECTOR_KW), max_kw=CONNECTOR_KW)
        bus = f.VehicleFactory(organization=depot.organization, home_depot=depot)
        # Back at 18:00 (punta starts), out again at 02:00: 4 off-punta hours at 50 kW cannot refill 240 km.
        for service_date, departs, returns in ((NIGHT, 6, 18), (NIGHT + dt.timedelta(days=1), 2, 12)):
            block = f.BlockFactory(
                depot=depot,
                service_date=service_date,
                departs_at=dt.time(departs),
                returns_at=dt.time(returns),
                distance_km=200.0,
            )
            block_assign(block=block, vehicle=bus, service_date=service_date)
        buses.append(bus)
    manager = f.manager_of(depot, username="demand_manager", is_staff=True)
    plan = plan_depot_night(depot=depot, service_night=NIGHT)
    return {"depot": depot, "plan": plan, "manager": manager}


def _evaluator_bill(plan: ChargingPlan) -> dict[str, float]:
    """The optimizer's evaluator on the stored plan (its instance and its stored power): cost per charge."""
    instance = optimizer.Instance.from_dict(plan.instance)
    stored = optimizer.Plan(
        vehicles=[
            optimizer.VehiclePlan(str(c.vehicle_id), None, None, None, list(c.power_kw)) for c in plan.charges.all()
        ],
        totals=optimizer.PlanTotals(),
        solver=optimizer.SolverInfo(method="stored", status="stored"),
    )
    totals = optimizer.evaluate(instance, stored).totals
    charges = instance.demand_charges()
    costs = {
        c.name: c.mxn_per_kw * max(peak - c.month_peak_kw, 0.0)
        for c, peak in zip(charges, totals.demand_peaks_kw, strict=True)
    }
    assert sum(costs.values()) == pytest.approx(totals.demand_cost_mxn)
    return costs


def _page_bill(client, manager, plan: ChargingPlan) -> dict[str, float]:
    client.force_login(manager)
    page = client.get(reverse("admin:charging_chargingplan_overview", args=[plan.pk]))
    assert page.status_code == 200
    rows = page.context["demand_charges"]
    assert (b'id="demand-charges"' in page.content) == bool(rows)  # the table shows when there is a charge
    return {row["name"]: row["cost"] for row in rows}


def _report_bill(api_client, manager, depot, plan: ChargingPlan) -> dict[str, float]:
    """The monthly report on sessions that draw exactly the plan's power, slot by slot."""
    slot = dt.timedelta(minutes=plan.slot_minutes)
    for charge in plan.charges.all():
        for index, kw in enumerate(charge.power_kw):
            if kw > 0:
                f.ChargingSessionFactory(
                    depot=depot,
                    vehicle=charge.vehicle,
                    started_at=plan.horizon_start + index * slot,
                    ended_at=plan.horizon_start + (index + 1) * slot,
                    energy_kwh=kw * slot / dt.timedelta(hours=1),
                )
    api_client.force_authenticate(manager)
    report = api_client.get(MONTHLY, {"depot": depot.pk, "month": NIGHT.strftime("%Y-%m")}).json()
    assert float(report["demand_cost"]) == pytest.approx(sum(float(d["cost"]) for d in report["demand_charges"]))
    return {line["name"]: float(line["cost"]) for line in report["demand_charges"]}


def test_the_plan_page_the_report_and_the_evaluator_bill_a_night_alike(night, client, api_client):
    plan, depot, manager = night["plan"], night["depot"], night["manager"]

    evaluator = _evaluator_bill(plan)
    page = _page_bill(client, manager, plan)
    report = _report_bill(api_client, manager, depot, plan)

    # Both charges cost something tonight (the buses charge in punta, and every hour counts for distribution),
    # so the agreement below is not one of zeros.
    assert set(evaluator) == {"capacity", "distribution"}
    assert all(cost > 100 for cost in evaluator.values()), evaluator
    # Power is stored to the watt and costs to the centavo: they agree to a few centavos, charge by charge.
    assert page == pytest.approx(evaluator, abs=0.05)
    assert report == pytest.approx(evaluator, abs=0.05)
    # And with the plan's own figure, from the optimizer's evaluation when it was made.
    assert sum(evaluator.values()) == pytest.approx(float(plan.demand_cost), abs=0.5)


def test_a_plan_stored_in_the_old_instance_format_still_renders(night, client):
    plan, manager = night["plan"], night["manager"]
    today = _page_bill(client, manager, plan)
    # As stored before the main charge carried its name and the charges their periods.
    legacy = dict(plan.instance)
    for key in ("demand_charge_name", "demand_periods"):
        legacy.pop(key)
    legacy["additional_demand_charges"] = [
        {k: v for k, v in c.items() if k != "periods"} for c in legacy["additional_demand_charges"]
    ]
    ChargingPlan.objects.filter(pk=plan.pk).update(instance=legacy)
    plan.refresh_from_db()

    # The main charge gets its tariff name back from the plan's stored month peaks ...
    assert _page_bill(client, manager, plan) == pytest.approx(today)

    # ... and, stored before those too, shows under the name old instances gave it.
    ChargingPlan.objects.filter(pk=plan.pk).update(month_peaks_kw={})
    plan.refresh_from_db()
    assert _page_bill(client, manager, plan) == pytest.approx(
        {"demand": today["capacity"], "distribution": today["distribution"]}
    )


def test_a_damaged_stored_instance_leaves_the_demand_charges_out_not_the_page(night, client):
    plan, manager = night["plan"], night["manager"]
    ChargingPlan.objects.filter(pk=plan.pk).update(instance={**plan.instance, "additional_demand_charges": "?"})
    plan.refresh_from_db()

    assert _page_bill(client, manager, plan) == {}
